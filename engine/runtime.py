"""How the engine's networks are evaluated: loaded from their weights, then run by PyTorch or
by ONNX Runtime.

    net = load_network(NumberRecognizer, "engine/weights/recognizer.pt")   # a torch module
    run = evaluator(net, "onnx", example=torch.zeros(1, 1, 32, 160), dynamic={0: "n", 3: "w"})
    logits = run(x)                                                        # tensor in, tensor out

The networks are defined and trained in PyTorch, and PyTorch is the reference. ONNX Runtime
evaluates the same folded network, exported in memory at load time (the .pt files stay the one
copy of the weights), to within 1e-4 of PyTorch's outputs and 1.3-3x faster on one CPU core
here: its kernels for these small convolutions and for the CRNN's GRU carry less per-call
overhead than PyTorch's eager ones (CRNN line 5.3 -> 1.7 ms, segmenter 5.3 -> 3.9 ms).
"""
from __future__ import annotations

import io
import warnings
from typing import Callable

import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

Network = Callable[[torch.Tensor], torch.Tensor]  # N x C x H x W float input -> raw outputs


def load_network(net: type[torch.nn.Module], path: str) -> torch.nn.Module:
    """A network class and its weights file -> the torch network, ready to evaluate (BatchNorm
    folded); evaluator() decides how it runs."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = net(blob["arch"]) if "arch" in blob else net()  # a recognizer's file names its shape
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return fold_batchnorm(model.eval())


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold each BatchNorm into the convolution before it (inference only): the same outputs to
    1e-5, without a pass over every activation map; about 20% off each network's time here."""
    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = torch.nn.Identity()
    return model


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class TorchNetwork:
    """A torch network from load_network, called with NCHW tensors. It runs channels-last (NHWC),
    the layout oneDNN's CPU kernels want: the same outputs, 20-40% faster here, most of it in
    max-pooling."""

    def __init__(self, model: torch.nn.Module):
        self.model = model.to(memory_format=torch.channels_last)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(x.contiguous(memory_format=torch.channels_last))


class OnnxNetwork:
    """A torch network exported to ONNX and run by an ONNX Runtime session on `threads` threads.
    `dynamic` names the input dimensions that vary between calls (batch size, line width)."""

    def __init__(self, model: torch.nn.Module, example: torch.Tensor, dynamic: dict[int, str] | None = None, threads: int = 1):
        import onnxruntime

        buf = io.BytesIO()
        with warnings.catch_warnings():  # the TorchScript-based exporter warns that it is the old one
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), buf, input_names=["x"], output_names=["y"], dynamic_axes={"x": dynamic} if dynamic else None, dynamo=False, opset_version=17)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting between calls
        self.session = onnxruntime.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"x": x.contiguous().numpy()})[0])


def evaluator(model: torch.nn.Module, runtime: str, example: torch.Tensor, dynamic: dict[int, str] | None = None) -> Network:
    """`model` (from load_network) as the engine calls it, run by `runtime` ("onnx" or "torch")."""
    if runtime == "onnx":
        return OnnxNetwork(model, example, dynamic, threads=torch.get_num_threads())
    if runtime == "torch":
        return TorchNetwork(model)
    raise ValueError(f"unknown runtime {runtime!r}")
