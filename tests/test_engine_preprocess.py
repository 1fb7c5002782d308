"""Network inputs: the recognizer's per-crop contrast stretch."""
import cv2
import numpy as np

from engine.preprocess import line_input, percentiles_u8


def test_percentiles_u8_is_numpy_percentile():
    rng = np.random.default_rng(0)
    for _ in range(300):
        img = rng.integers(0, int(rng.integers(1, 256)), (int(rng.integers(1, 40)), int(rng.integers(1, 500))), dtype=np.uint8)
        qs = (2, 98) if rng.random() < 0.5 else tuple(rng.uniform(0, 100, 3))
        assert np.allclose(percentiles_u8(img, qs), np.percentile(img.astype(np.float64), qs), rtol=0, atol=1e-4)


def test_line_input_stretches_contrast_per_crop():
    crop = np.full((48, 300, 3), 120, np.uint8)
    cv2.putText(crop, "6222 0212", (5, 38), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (140, 140, 140), 3)  # faint print
    x = line_input(crop)
    assert x.shape[0] == 32 and x.shape[1] % 4 == 0
    assert x.min() <= -0.9 and x.max() >= 0.9  # a 20-level difference spans the input range


def test_a_text_band_keeps_its_aspect_at_48_rows_until_it_is_squeezed_to_the_widest_allowed():
    from engine.preprocess import TEXT_H, text_band_input

    band = np.full((50, 900, 3), 200, np.uint8)
    assert text_band_input(band).shape == (3, TEXT_H, 864)  # 900 x 48 / 50, whole 8 px columns
    assert text_band_input(band, max_aspect=640 / TEXT_H).shape == (3, TEXT_H, 640)
    assert text_band_input(band[:, :300], max_aspect=640 / TEXT_H).shape == (3, TEXT_H, 288)  # narrower: as it is
    assert text_band_input(band, height=40).shape == (3, 40, 720)  # a recognizer of another height: the same aspect
