"""Load PP-OCRv6 small rec's pretrained weights from its ONNX graph into engine.textrec.

    python -m engine.train.import_ppocr --out runs/textrec_pretrained.pt

Source: `rapidocr/models/PP-OCRv6_rec_small.onnx` in the `rapidocr==3.10.0` wheel (PaddleOCR's
PP-OCRv6 small recognizer, Apache-2.0; see engine/weights/TEXTREC_SOURCE.md). The graph is the
deployed model: each convolution is followed by an Add of its bias or by a BatchNormalization,
LayerNorms are spelled out (ReduceMean, Sub, Pow, Sqrt, Div, then Mul and Add by their weight
and bias), linear layers are MatMul + Add. Those parameters are read in graph order and given
to the module's layers of the same kind in module order, every shape checked.

The 18,710-way head keeps the rows of the card alphabet's characters (and blank), so the
imported model reads card text zero-shot as the source model does over that alphabet.
"""
from __future__ import annotations

import argparse
import importlib.util
import os

import numpy as np
import torch
from torch import nn

from engine.textrec import CARD_ALPHABET, TextRecognizer

SOURCE_PACKAGE, SOURCE_VERSION, SOURCE_FILE = "rapidocr", "3.10.0", "models/PP-OCRv6_rec_small.onnx"


def source_model_path() -> str | None:
    """The pretrained ONNX file inside the installed rapidocr package, or None."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], SOURCE_FILE)
    return path if os.path.exists(path) else None


def source_characters(model) -> list[str]:
    """The source model's classes: blank, its dictionary (in the graph's metadata), space."""
    meta = {p.key: p.value for p in model.metadata_props}
    return ["<blank>", *meta["character"].split("\n"), " "]


class _Graph:
    def __init__(self, model):
        from onnx import numpy_helper

        self.nodes = list(model.graph.node)
        self.init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)

    def next_op(self, output: str):
        """The node that consumes `output`, through Identity nodes."""
        node = self.consumers[output][0]
        while node.op_type == "Identity":
            node = self.consumers[node.output[0]][0]
        return node

    def param(self, node) -> np.ndarray | None:
        got = [self.init[i] for i in node.input if i in self.init]
        return got[0] if got else None


def read_parameters(model) -> tuple[list, list, list]:
    """(convs as (weight, bias), layer norms as (weight, bias), linears as (weight, bias)), in
    graph order, BatchNorms folded into their convolutions."""
    g = _Graph(model)
    convs, norms, linears = [], [], []
    for node in g.nodes:
        if node.op_type == "Conv":
            w = g.init[node.input[1]]
            after = g.next_op(node.output[0])
            if len(node.input) > 2:
                b = g.init[node.input[2]]
            elif after.op_type == "Add" and g.param(after) is not None:
                b = g.param(after).reshape(-1)
            elif after.op_type == "BatchNormalization":
                scale, shift, mean, var = (g.init[i] for i in after.input[1:])
                eps = next(a.f for a in after.attribute if a.name == "epsilon")
                k = scale / np.sqrt(var + eps)
                w, b = w * k[:, None, None, None], shift - mean * k
            else:
                b = np.zeros(w.shape[0], np.float32)
            convs.append((w, b))
        elif node.op_type == "MatMul" and g.param(node) is not None:
            linears.append((g.param(node).T, g.param(g.next_op(node.output[0])).reshape(-1)))
        elif node.op_type == "Div" and g.param(node) is None:
            mul = g.next_op(node.output[0])  # a LayerNorm's normalised output, times its weight
            if mul.op_type == "Mul" and g.param(mul) is not None and g.param(mul).ndim == 1:
                norms.append((g.param(mul), g.param(g.next_op(mul.output[0]))))
    return convs, norms, linears


def attention_scale(model) -> float:
    """The scale the graph multiplies queries by (checked against 1/sqrt(head size))."""
    g = _Graph(model)
    for node in g.nodes:
        if node.op_type == "Mul" and g.param(node) is not None and g.param(node).shape == (1,):
            return float(g.param(node)[0])
    raise ValueError("no attention scale in the graph")


def import_pretrained(onnx_path: str, alphabet: str | None = CARD_ALPHABET) -> TextRecognizer:
    """The source model as a TextRecognizer: with the head cut to `alphabet` (blank first), or
    with all of the source's classes when `alphabet` is None."""
    import onnx

    model = onnx.load(onnx_path)
    chars = source_characters(model)
    if alphabet is None:
        keep = list(range(len(chars)))
    else:
        index = {c: i for i, c in reversed(list(enumerate(chars)))}  # first occurrence
        missing = [c for c in alphabet if c not in index]
        if missing:
            raise ValueError(f"source model has no class for {missing}")
        keep = [0] + [index[c] for c in alphabet]
    net = TextRecognizer(classes=len(keep))
    convs, norms, linears = read_parameters(model)
    scale = attention_scale(model)
    head_dim = net.neck.blocks[0].attn.qkv.in_features // net.neck.blocks[0].attn.heads
    if abs(scale - head_dim**-0.5) > 1e-6:
        raise ValueError(f"attention scale {scale} is not 1/sqrt({head_dim})")
    layers = {
        "conv": ([m for m in net.modules() if isinstance(m, nn.Conv2d)], convs),
        "norm": ([m for m in net.modules() if isinstance(m, nn.LayerNorm)], norms),
        "linear": ([m for m in net.modules() if isinstance(m, nn.Linear)], linears),
    }
    for kind, (modules, params) in layers.items():
        if len(modules) != len(params):
            raise ValueError(f"{kind}: {len(modules)} layers in the module, {len(params)} in the graph")
        for m, (w, b) in zip(modules, params):
            if m is net.head:
                w, b = w[keep], b[keep]
            if tuple(m.weight.shape) != w.shape or tuple(m.bias.shape) != b.shape:
                raise ValueError(f"{kind}: shape {tuple(m.weight.shape)} against the graph's {w.shape}")
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(np.array(w, np.float32)))
                m.bias.copy_(torch.from_numpy(np.array(b, np.float32)))
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", default=source_model_path(), help="the source model (default: from the installed rapidocr)")
    ap.add_argument("--out", default="runs/textrec_pretrained.pt")
    args = ap.parse_args()
    if not args.onnx:
        raise SystemExit(f"install {SOURCE_PACKAGE}=={SOURCE_VERSION} (pip install '.[train]') or pass --onnx")
    net = import_pretrained(args.onnx)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "alphabet": CARD_ALPHABET, "source": f"{SOURCE_PACKAGE}=={SOURCE_VERSION}:{SOURCE_FILE}"}, args.out)
    print(f"wrote {args.out}: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters")


if __name__ == "__main__":
    main()
