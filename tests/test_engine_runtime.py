"""Loading and running the networks (engine/runtime.py): folding BatchNorm, the shape a weights
file names, and ONNX Runtime computing what PyTorch computes."""
import copy
import functools

import os

import numpy as np
import pytest
import torch

from engine.models import CardSegmenter, LineLocator, NumberRecognizer
from engine.runtime import evaluator, fold_batchnorm, load_network
from engine.textrec import TextRecognizer


@pytest.mark.parametrize("net, shape", [(CardSegmenter, (1, 3, 64, 64)), (LineLocator, (1, 3, 64, 96)), (NumberRecognizer, (2, 1, 32, 120)), (functools.partial(NumberRecognizer, "fast"), (2, 1, 32, 120))])
def test_folded_network_computes_the_same(net, shape):
    torch.manual_seed(0)
    model = net()
    for m in model.modules():  # BatchNorm statistics far from the identity, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.2, 3)
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
    model.eval()
    folded = fold_batchnorm(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-4, rtol=1e-4)


def test_a_recognizer_file_names_its_shape(tmp_path):
    """Weights saved with their arch load into that shape; files without one are the original CRNN."""
    from engine.runtime import load_network
    from engine.train.common import save_weights

    for arch in ("crnn", "fast"):
        path = str(tmp_path / f"{arch}.pt")
        save_weights(NumberRecognizer(arch), path, args={"seed": 0}, module="test", metrics={}, arch=arch)
        assert load_network(NumberRecognizer, path).arch == arch
    blob = torch.load(path, weights_only=False)
    del blob["arch"]
    torch.save(blob, path)
    with pytest.raises(RuntimeError):  # "fast" weights read as a CRNN: the shapes do not match
        load_network(NumberRecognizer, path)


WEIGHTS = os.path.join(os.path.dirname(__file__), "..", "engine", "weights")
LINES = {0: "lines", 3: "width"}


@pytest.mark.parametrize("net, name, shape, dynamic", [
    (CardSegmenter, "detector.pt", (1, 3, 192, 192), None),
    (LineLocator, "locator.pt", (1, 3, 128, 208), None),
    (TextRecognizer, "textrec.pt", (3, 3, 48, 320), LINES),
])
def test_onnx_runtime_computes_what_torch_computes(net, name, shape, dynamic):
    """Each shipped network, exported and run by ONNX Runtime, against PyTorch; the recognizer
    also on a batch shape other than the one exported with (batch size and width vary per call)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    path = os.path.join(WEIGHTS, name)
    if not os.path.exists(path):
        pytest.skip("engine weights not built")
    torch.manual_seed(0)
    by_torch = evaluator(load_network(net, path), "torch", torch.zeros(shape), dynamic)
    by_onnx = evaluator(load_network(net, path), "onnx", torch.zeros(shape), dynamic)
    other = (5, shape[1], shape[2], 176) if dynamic else shape
    for x in (torch.rand(shape) * 2 - 1, torch.rand(other) * 2 - 1):
        expected, got = by_torch(x), by_onnx(x)
        assert got.shape == expected.shape
        assert np.abs(got.numpy() - expected.numpy()).max() < 1e-3


def test_an_unknown_runtime_is_refused():
    with pytest.raises(ValueError):
        evaluator(NumberRecognizer(), "tensorrt", torch.zeros(1, 1, 32, 128))
