"""The card text recognizer: PaddleOCR's PP-OCRv6 small text-line recognizer (a PPLCNetV4
backbone, a light SVTR neck, a CTC head) as a plain PyTorch module, with a head for the card
alphabet instead of its 18,710 classes.

It is the network in its deployed form, as the pretrained ONNX graph holds it: every
convolution carries its folded BatchNorm as a bias, and the re-parameterised depthwise branches
are one 3x3 convolution. That is the form the weights come in (engine/train/import_ppocr.py reads
them from the graph's initializers) and the form that trains here: fine-tuning without the
BatchNorms keeps the statistics the model learnt on its large corpus.

Input: N x 3 x H x W BGR (H = 48 as the source model's, or the arch's own), values in [-1, 1]
(engine/preprocess.text_band_input). Output: N x W/column_px x classes logits for CTC; class 0
is blank, class i + 1 is CARD_ALPHABET[i]. The source model's columns are 8 px wide; the card model's (arch "cols4") are 4 px: a
19-digit number across a full-width band gets about five columns a digit instead of two or
three, and the backbone's cost does not change (only the light neck and head see more columns).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

TEXT_H = 48  # the source model's input height
CARD_ALPHABET = "0123456789 /-ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# (kernel, in, out, stride, squeeze-excite) per block; PPLCNetV4 "small" for recognition.
STEM = (48, 96)
BLOCKS = (
    [(3, 96, 96, 1, True)]
    + [(3, 96, 96, 1, False)] * 2
    + [(3, 96, 192, (2, 1), False)] + [(3, 192, 192, 1, se) for se in (True, False, True, False, True, False)]
    + [(3, 192, 384, (2, 1), False), (3, 384, 384, 1, True), (3, 384, 384, 1, False)]
)
NECK_DIM, NECK_DEPTH, NECK_HEADS, NECK_MLP = 120, 2, 8, 240


def _conv(cin: int, cout: int, k, stride=1, groups: int = 1, padding=None) -> nn.Conv2d:
    if padding is None:
        padding = tuple((x - 1) // 2 for x in k) if isinstance(k, tuple) else (k - 1) // 2
    return nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=True)


class Stem(nn.Module):
    """Stride 4: a 3x3 stride-2 convolution, then a pooled and a convolved branch joined."""

    def __init__(self, mid: int, out: int):
        super().__init__()
        self.stem1 = _conv(3, mid, 3, 2)
        self.stem2a = _conv(mid, mid // 2, 2, padding=0)
        self.stem2b = _conv(mid // 2, mid, 2, padding=0)
        self.stem3 = _conv(mid * 2, mid, 3, 2)
        self.stem4 = _conv(mid, out, 1)

    def forward(self, x):
        x = F.relu(self.stem1(x))
        # Paddle's "SAME" padding for a 2x2 kernel at stride 1 pads one pixel right and below.
        x2 = F.relu(self.stem2b(F.pad(F.relu(self.stem2a(F.pad(x, (0, 1, 0, 1)))), (0, 1, 0, 1))))
        x1 = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2, 1)
        return F.relu(self.stem4(F.relu(self.stem3(torch.cat([x1, x2], 1)))))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels // 4, 1)
        self.conv2 = nn.Conv2d(channels // 4, channels, 1)

    def forward(self, x):
        s = F.relu(self.conv1(x.mean((2, 3), keepdim=True)))
        return x * F.hardsigmoid(self.conv2(s))


class Block(nn.Module):
    """Depthwise token mixer (+ squeeze-excite), then a 2x expand / compress channel mixer."""

    def __init__(self, k: int, cin: int, cout: int, stride, se: bool):
        super().__init__()
        self.dw = _conv(cin, cin, k, stride, groups=cin)
        self.se = SqueezeExcite(cin) if se else None
        self.expand = nn.Conv2d(cin, 2 * cin, 1)
        self.compress = nn.Conv2d(2 * cin, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        x = self.dw(x)
        if self.se is not None:
            x = self.se(x)
        y = self.compress(F.gelu(self.expand(x)))
        return x + y if self.residual else y


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, t, c = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(n, t, c))


class NeckBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.silu(self.fc1(self.norm2(x))))


class Neck(nn.Module):
    """Light SVTR: a 1x1 reduction, a 1x7 depthwise convolution along the columns, global
    attention over the columns, and a 1x1 skip around it all."""

    def __init__(self, cin: int, dim: int = NECK_DIM):
        super().__init__()
        self.skip = nn.Conv2d(cin, dim, 1)
        self.reduce = nn.Conv2d(cin, dim, 1)
        self.local = nn.Conv2d(dim, dim, (1, 7), padding=(0, 3), groups=dim)
        self.blocks = nn.ModuleList(NeckBlock(dim, NECK_HEADS, NECK_MLP) for _ in range(NECK_DEPTH))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):  # N x C x 1 x T -> N x T x dim
        skip = F.silu(self.skip(x))
        z = F.silu(self.reduce(x))
        z = z + F.silu(self.local(z))
        z = z.flatten(2).transpose(1, 2)
        for block in self.blocks:
            z = block(z)
        return self.norm(z) + skip.flatten(2).transpose(1, 2)


class Arch(NamedTuple):
    column_px: int  # a column's width in input pixels
    height: int  # input height: the cost is in proportion to it squared, as bands keep their aspect


# By architecture name; a weights file records its own (`arch`). Every arch takes the same
# weights: the backbone is all convolutions, and it leaves the 3 rows the neck pools for any
# height from 33 to 48.
TEXTREC_ARCHS = {"cols8": Arch(8, TEXT_H), "cols4": Arch(4, TEXT_H), "cols4h40": Arch(4, 40)}


class TextRecognizer(nn.Module):
    def __init__(self, arch: str = "cols8", classes: int = len(CARD_ALPHABET) + 1):
        super().__init__()
        self.arch, (self.column_px, self.input_height) = arch, TEXTREC_ARCHS[arch]
        self.stem = Stem(*STEM)
        self.blocks = nn.Sequential(*(Block(*b) for b in BLOCKS))
        self.neck = Neck(BLOCKS[-1][2])
        self.head = nn.Linear(NECK_DIM, classes)

    def forward(self, x):  # N x 3 x input_height x W -> N x W/column_px x classes (logits)
        return self.decode_features(self.blocks(self.stem(x)))

    def decode_features(self, x):  # the backbone's N x C x 3 x W/4 -> N x W/column_px x classes
        x = F.avg_pool2d(x, (3, self.column_px // 4))  # height 3 -> 1
        return self.head(self.neck(x))
