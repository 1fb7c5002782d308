"""Folding BatchNorm into convolutions at load time must not change what the networks compute."""
import copy
import functools

import pytest
import torch

from engine.models import CardSegmenter, LineLocator, NumberRecognizer
from engine.pipeline import _fold_batchnorm


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
    folded = _fold_batchnorm(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-4, rtol=1e-4)


def test_a_recognizer_file_names_its_shape(tmp_path):
    """Weights saved with their arch load into that shape; files without one are the original CRNN."""
    from engine.pipeline import load_network
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
