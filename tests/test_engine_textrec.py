"""The card text recognizer: the PyTorch port computes what the pretrained ONNX graph computes,
and the shipped weights run the same under ONNX Runtime as under PyTorch."""
import os

import numpy as np
import pytest
import torch

from engine.textrec import CARD_ALPHABET, TEXT_H, TEXTREC_ARCHS, TextRecognizer
from engine.train.import_ppocr import import_pretrained, source_model_path

SOURCE = source_model_path()
needs_source = pytest.mark.skipif(SOURCE is None, reason="rapidocr==3.10.0 (the pretrained model's wheel) not installed: pip install '.[test]'")


def _band(seed: int, height: int = TEXT_H) -> np.ndarray:
    """A synthetic number band, as the engine cuts one, as the recognizer's input."""
    from engine.preprocess import text_band_input
    from engine.synth.card import render_card

    card = render_card(np.random.default_rng(seed))
    x0, y0, x1, y1 = card.number.box
    h = y1 - y0
    band = card.image[max(0, int(y0 - 0.35 * h)) : int(y1 + 0.35 * h)]
    return text_band_input(band, height=height)[None]


@pytest.fixture(scope="module")
def source_session():
    import onnxruntime

    return onnxruntime.InferenceSession(SOURCE, providers=["CPUExecutionProvider"])


@needs_source
@pytest.mark.parametrize("seed", [0, 1])
def test_the_port_computes_what_the_source_graph_computes(source_session, seed):
    x = _band(seed)
    want = source_session.run(None, {"x": x})[0]  # softmax over 18,710 classes
    net = import_pretrained(SOURCE, alphabet=None)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).softmax(-1).numpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 1e-3


@needs_source
def test_the_card_head_keeps_the_source_classes_of_the_card_alphabet(source_session):
    import onnx

    from engine.train.import_ppocr import source_characters

    chars = source_characters(onnx.load(SOURCE))
    keep = [0] + [chars.index(c) for c in CARD_ALPHABET]
    x = _band(2)
    want = source_session.run(None, {"x": x})[0][..., keep]
    want = want / want.sum(-1, keepdims=True)  # the source's belief, restricted to our classes
    with torch.no_grad():
        got = import_pretrained(SOURCE)(torch.from_numpy(x)).softmax(-1).numpy()
    assert np.abs(got - want).max() < 1e-3


@pytest.mark.parametrize("name", ["textrec.pt", "textrec_fast.pt"])
def test_shipped_weights_run_alike_on_onnx_runtime_and_pytorch(name):
    pytest.importorskip("onnxruntime")
    from engine.pipeline import WEIGHTS_DIR
    from engine.runtime import evaluator, load_network

    net = load_network(TextRecognizer, os.path.join(WEIGHTS_DIR, name))
    example = torch.zeros(1, 3, net.input_height, 320)
    onnx_run = evaluator(net, "onnx", example, {0: "bands", 3: "width"})
    torch_run = evaluator(net, "torch", example)
    x = torch.from_numpy(np.concatenate([_band(3, net.input_height)] * 2))  # a batch, at another width than the export's
    a, b = onnx_run(x), torch_run(x)
    assert a.shape == (2, x.shape[3] // net.column_px, len(CARD_ALPHABET) + 1)
    assert (a - b).abs().max() < 1e-3


def test_a_weights_file_names_its_column_width(tmp_path):
    """The card model's columns are 4 px wide, the source's 8: the same weights load into
    either, and a weights file says which it is, so the engine cuts the logits to the band."""
    from engine.runtime import load_network
    from engine.train.common import save_weights

    torch.manual_seed(0)
    wide = TextRecognizer("cols8").eval()
    narrow = TextRecognizer("cols4").eval()
    narrow.load_state_dict(wide.state_dict())
    path = str(tmp_path / "textrec.pt")
    save_weights(narrow, path, args={"seed": 0}, module="tests", metrics={}, arch="cols4")
    loaded = load_network(TextRecognizer, path)
    x = torch.from_numpy(_band(2))
    with torch.no_grad():
        assert (loaded.column_px, wide.column_px) == (4, 8)
        assert loaded(x).shape[1] == x.shape[3] // 4 == 2 * wide(x).shape[1]


@pytest.mark.parametrize("arch", sorted(TEXTREC_ARCHS))
def test_every_arch_takes_the_same_weights_and_gives_a_column_per_column_px(arch):
    """An arch is a column width and an input height, not parameters: the source's weights load
    into each, and a band at the arch's height gives one output column per column_px pixels."""
    torch.manual_seed(0)
    net = TextRecognizer(arch).eval()
    net.load_state_dict(TextRecognizer("cols8").state_dict())
    x = torch.from_numpy(_band(5, net.input_height))
    assert x.shape[2] == net.input_height
    with torch.no_grad():
        assert net(x).shape == (1, x.shape[3] // net.column_px, len(CARD_ALPHABET) + 1)


def test_training_batches_from_worker_processes_each_come_from_their_own_seed():
    """The GPU path makes batches in spawned workers: each worker draws its own cards, so two
    workers never hand the trainer the same batch, and every batch is trainable as made here."""
    from engine.train.textrec import Batches, batch_source

    args = dict(batch=3, pseudo="no-such-file.tsv", real_frac=0.0, pseudo_frac=0.0, date_prob=0.5)
    source = batch_source(Batches(0, **args), 0, workers=2, **args)
    (x1, t1), (x2, t2) = next(source), next(source)
    for x, targets in ((x1, t1), (x2, t2)):
        assert x.ndim == 4 and x.shape[:3] == (len(targets), 3, 48) and all(targets)
    assert t1 != t2
    del source
