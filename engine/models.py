"""The engine's small networks, by kind. Definitions only: no data, no training.

- CardSegmenter: photo (letterboxed to SEG_SIZE) -> card mask at half resolution.
- LineLocator: rectified card (LOC_H x LOC_W) -> heatmaps for number line, expiry, issue date.
- NumberRecognizer: a text line (height REC_H) -> per-column class scores for CTC, in two
  shapes (RECOGNIZER_ARCHS): the CRNN and a fast one.
"""
from __future__ import annotations

import torch
from torch import nn

SEG_SIZE = 192
LOC_H, LOC_W = 128, 208
REC_H = 32
ALPHABET = "0123456789 /"  # CTC class 0 is blank; class i+1 is ALPHABET[i]
LOC_CHANNELS = ("number", "expiry", "issue")


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyUNet(nn.Module):
    """Encoder with three stride-2 stages, decoder back to half resolution with skips."""

    def __init__(self, cin: int, cout: int, widths=(16, 32, 48, 64)):
        super().__init__()
        w0, w1, w2, w3 = widths
        self.stem = nn.Sequential(conv_bn(cin, w0, 2), conv_bn(w0, w0))  # 1/2
        self.down1 = nn.Sequential(conv_bn(w0, w1, 2), conv_bn(w1, w1))  # 1/4
        self.down2 = nn.Sequential(conv_bn(w1, w2, 2), conv_bn(w2, w2))  # 1/8
        self.down3 = nn.Sequential(conv_bn(w2, w3, 2), conv_bn(w3, w3), conv_bn(w3, w3))  # 1/16
        self.up2 = conv_bn(w3 + w2, w2)
        self.up1 = conv_bn(w2 + w1, w1)
        self.up0 = conv_bn(w1 + w0, w0)
        self.head = nn.Conv2d(w0, cout, 1)

    @staticmethod
    def _up(x, like):
        return nn.functional.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x):
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        s3 = self.down3(s2)
        y = self.up2(torch.cat([self._up(s3, s2), s2], 1))
        y = self.up1(torch.cat([self._up(y, s1), s1], 1))
        y = self.up0(torch.cat([self._up(y, s0), s0], 1))
        return self.head(y)  # logits at 1/2 resolution


class CardSegmenter(TinyUNet):
    def __init__(self):
        super().__init__(3, 1)


class LineLocator(TinyUNet):
    def __init__(self):
        super().__init__(3, len(LOC_CHANNELS), widths=(16, 32, 64, 96))


# Recognizer shapes, by name; a weights file records its own (`arch`), the old ones are "crnn".
# "fast" is "crnn" with narrower convolutions and two 1-D convolutions over the columns in place
# of the BiGRU: each column still sees about three digits either side, and a line costs about
# 3.5 ms on one core instead of 8 (the GRU runs column by column).
RECOGNIZER_ARCHS = {
    "crnn": dict(widths=(16, 32, 64, 64, 96, 96, 128), hidden=80, context="gru"),
    "fast": dict(widths=(16, 32, 48, 48, 64, 64, 96), hidden=64, context="conv"),
}


class NumberRecognizer(nn.Module):
    """CRNN: a conv stack squeezes height 32 to 1, then context along the columns (4 px each):
    a BiGRU ("gru") or two 1-D convolutions ("conv")."""

    def __init__(self, arch: str = "crnn"):
        super().__init__()
        shape = RECOGNIZER_ARCHS[arch]
        self.arch, self.context = arch, shape["context"]
        c1, c2, c3, c4, c5, c6, c7 = shape["widths"]
        hidden = shape["hidden"]
        self.features = nn.Sequential(
            conv_bn(1, c1), nn.MaxPool2d(2),  # 16 x W/2
            conv_bn(c1, c2), nn.MaxPool2d(2),  # 8 x W/4
            conv_bn(c2, c3), conv_bn(c3, c4), nn.MaxPool2d((2, 1)),  # 4 x W/4
            conv_bn(c4, c5), conv_bn(c5, c6), nn.MaxPool2d((2, 1)),  # 2 x W/4
            nn.Conv2d(c6, c7, (2, 1), bias=False), nn.BatchNorm2d(c7), nn.ReLU(inplace=True),  # 1 x W/4
        )
        if self.context == "gru":
            self.rnn = nn.GRU(c7, hidden, bidirectional=True, batch_first=True)
        else:
            self.rnn = nn.Sequential(
                nn.Conv1d(c7, 2 * hidden, 5, padding=2), nn.ReLU(inplace=True),
                nn.Conv1d(2 * hidden, 2 * hidden, 5, padding=4, dilation=2), nn.ReLU(inplace=True),
            )
        self.head = nn.Linear(2 * hidden, len(ALPHABET) + 1)

    def forward(self, x):  # x: N x 1 x 32 x W, values in [-1, 1]
        f = self.features(x).squeeze(2)  # N x C x T
        if self.context == "gru":
            f, _ = self.rnn(f.transpose(1, 2))
        else:
            f = self.rnn(f).transpose(1, 2)  # N x T x C
        return self.head(f)  # N x T x classes (logits)
