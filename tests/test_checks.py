"""Warning checks and quality on generated positives and clean negatives.

Cards are rendered by engine.synth.card (no ../shared needed); the tampered
copies come from engine.synth.tamper. Date and Luhn edges use a fixed clock.
The realcards-dev smoke test skips when ../shared is absent.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone

import numpy as np
import pytest

pytest.importorskip("PIL")

from bin_tables import luhn_valid  # noqa: E402
from engine import checks  # noqa: E402
from bin_tables import luhn_valid as luhn_ok  # noqa: E402
from engine.synth import tamper  # noqa: E402
from engine.synth.card import render_card  # noqa: E402
from engine.types import WARN_BORDER_INCOMPLETE, WARN_INVALID_DATE, WARN_PHOTOCOPY, WARN_REFLECTION, WARN_RESHOOT, Box, ReadOptions, TextField  # noqa: E402

N = 6
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def cards() -> list[np.ndarray]:
    return [render_card(np.random.default_rng([7, i])).image for i in range(N)]


def _rate(fn, imgs) -> float:
    return sum(bool(fn(im)) for im in imgs) / len(imgs)


def _copies(cards, transform, seed):
    return [transform(c, np.random.default_rng([seed, i])) for i, c in enumerate(cards)]


# ------------------------------------------------------------------ quality


def test_quality_is_high_for_sharp_cards_and_low_when_blurred(cards):
    for c in cards:
        assert checks.quality(c) >= 50
        assert checks.quality(tamper.blur(c, 2.5)) < 50
        assert checks.quality(tamper.blur(c, 4.0)) < checks.quality(tamper.blur(c, 2.5)) <= checks.quality(c)


def test_quality_is_a_0_to_100_int(cards):
    for img in (cards[0], np.zeros((540, 856, 3), np.uint8), np.full((540, 856, 3), 255, np.uint8)):
        q = checks.quality(img)
        assert isinstance(q, int) and 0 <= q <= 100


def test_blurred_floor_off_by_default_and_configurable(cards):
    soft = tamper.blur(cards[0], 3.0)
    assert checks.THRESHOLDS["blur_floor"] == 0
    assert not checks.blurred(soft)  # floor 0: never
    assert checks.blurred(soft, floor=50)
    assert not checks.blurred(cards[0], floor=50)


# ------------------------------------------------------------------ card-level warnings


def test_clean_and_mildly_changed_cards_raise_no_card_warning(cards):
    imgs = list(cards) + _copies(cards, tamper.mild, 11)
    for fn in (checks.reflection, checks.photocopy, checks.reshoot):
        assert _rate(fn, imgs) == 0, fn.__name__


def test_reflection_fires_on_glare(cards):
    glared = _copies(cards, tamper.glare, 21)
    assert _rate(checks.reflection, glared) >= 5 / 6
    assert _rate(checks.photocopy, glared) == 0


def test_photocopy_fires_on_grey_and_toner_copies(cards):
    copies = _copies(cards, tamper.photocopy, 31)
    assert _rate(checks.photocopy, copies) == 1
    assert _rate(checks.reshoot, copies) == 0


def test_photocopy_ignores_a_uniform_colour_cast(cards):
    grey = np.repeat(np.mean(cards[0], axis=2, keepdims=True), 3, axis=2)
    warm = np.clip(grey * np.float32([0.8, 0.95, 1.15]), 0, 255).astype(np.uint8)  # BGR: a tungsten cast
    assert checks.photocopy(warm)
    assert checks.colourfulness(warm) > checks.chroma_spread(warm)  # colourfulness counts the cast


def test_reshoot_fires_on_screens_and_printed_photos(cards):
    screens = _copies(cards, tamper.screen_reshoot, 41)
    prints = _copies(cards, tamper.print_reshoot, 51)
    assert _rate(checks.reshoot, screens) >= 5 / 6
    assert _rate(checks.reshoot, prints) >= 5 / 6


def test_screen_reshoot_with_bezel_still_fires(cards):
    assert checks.reshoot(tamper.screen_reshoot(cards[1], np.random.default_rng(3), bezel=True))


def test_tamper_is_deterministic_given_the_rng(cards):
    for fn in (tamper.glare, tamper.photocopy, tamper.screen_reshoot, tamper.print_reshoot, tamper.mild):
        a = fn(cards[0], np.random.default_rng(5))
        b = fn(cards[0], np.random.default_rng(5))
        assert a.shape == cards[0].shape and np.array_equal(a, b), fn.__name__


# ------------------------------------------------------------------ border


def test_border_whole_card_inside_the_photo_is_not_cut(cards):
    for i, c in enumerate(cards):
        photo, quad, _ = tamper.place_in_photo(c, np.random.default_rng([61, i]))
        assert not checks.border_incomplete(quad, (photo.shape[1], photo.shape[0]), False)


@pytest.mark.parametrize("detected", [True, False])
def test_border_cut_corner_or_edge_is_flagged(cards, detected):
    for i, c in enumerate(cards):
        r = np.random.default_rng([71, i])
        photo, quad, mask = tamper.place_in_photo(c, r)
        cut, q = tamper.cut_border(photo, quad, mask, r, detected=detected)
        assert checks.border_incomplete(q, (cut.shape[1], cut.shape[0]), False)


def test_border_frame_case_is_never_flagged():
    w, h = 856, 540
    frame = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    assert not checks.border_incomplete(frame, (w, h), True)
    assert checks.border_incomplete(frame, (w, h), False)


# ------------------------------------------------------------------ dates and Luhn


def _expiry(text: str) -> TextField:
    return TextField(text=text, confidence=0.9, quad=((0, 0), (1, 0), (1, 1), (0, 1)), box=Box(0, 0, 1, 1))


@pytest.mark.parametrize(
    "text, invalid",
    [
        ("05/25", True),  # expired last month
        ("06/25", False),  # valid through the end of this month
        ("07/25", False),
        ("12/24", True),
        ("13/27", True),  # month 13: malformed
        ("00/27", True),
        ("12/55", False),  # 30 years ahead: still plausible
        ("01/56", True),  # too far ahead
        ("12/99", True),
        ("1227", True),  # no slash: malformed
        ("ab/cd", True),
    ],
)
def test_invalid_date_edges_with_a_fixed_clock(text, invalid):
    assert checks.invalid_date(_expiry(text), NOW) is invalid


def test_no_expiry_read_is_not_invalid():
    assert checks.invalid_date(None, NOW) is False


def test_expiry_boundary_moves_with_the_clock():
    e = _expiry("06/25")
    assert not checks.invalid_date(e, datetime(2025, 6, 30, 23, 59, tzinfo=timezone.utc))
    assert checks.invalid_date(e, datetime(2025, 7, 1, 0, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize(
    "digits, ok",
    [
        ("6011111111111117", True),
        ("6011111111111118", False),
        ("5500000000000004", True),
        ("4111111111111111", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("79927398710", False),
    ],
)
def test_luhn_engine_and_bin_tables_agree(digits, ok):
    assert luhn_ok(digits) is ok
    assert luhn_valid(digits) is ok


# ------------------------------------------------------------------ run()


def test_run_reports_only_the_checks_asked_for(cards):
    c = tamper.photocopy(cards[0], np.random.default_rng(1))
    h, w = c.shape[:2]
    frame = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    warnings, q = checks.run(c, frame, c, ReadOptions(), expiry=_expiry("01/20"), now=NOW, is_frame=True)
    assert warnings == [WARN_INVALID_DATE] and q is None  # quality only when asked for
    _, q = checks.run(c, frame, c, ReadOptions(want_quality=True), expiry=None, now=NOW, is_frame=True)
    assert 0 <= q <= 100
    everything = ReadOptions(check_border=True, check_reflection=True, check_copy=True, check_reshoot=True)
    warnings, _ = checks.run(c, frame, c, everything, expiry=None, now=NOW, is_frame=True)
    assert warnings == [WARN_PHOTOCOPY]
    warnings, _ = checks.run(c, frame, c, everything, expiry=None, now=NOW, is_frame=False)
    assert WARN_BORDER_INCOMPLETE in warnings
    assert WARN_REFLECTION not in warnings and WARN_RESHOOT not in warnings


# ------------------------------------------------------------------ real photos (../shared)

REALCARDS = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "realcards-dev")


@pytest.mark.skipif(not os.path.exists(os.path.join(REALCARDS, "labels.tsv")), reason="../shared/data/realcards-dev not present")
def test_real_clean_photos_raise_no_warning_and_their_copies_do():
    from engine.eval_warnings import as_card, load_full_cards

    photos = load_full_cards(REALCARDS)[::4]  # a few, to stay fast
    assert photos
    r = np.random.default_rng(3)
    for _, photo in photos:
        card = as_card(photo)
        assert not (checks.reflection(card) or checks.photocopy(card) or checks.reshoot(card))
        assert checks.photocopy(tamper.photocopy(card, r))
        assert checks.reshoot(tamper.print_reshoot(card, r))


def test_not_card_image_builder_gives_several_kinds():
    from engine.eval_warnings import not_card_images

    imgs = not_card_images(np.random.default_rng(1), n_documents=2, n_id_cards=2)
    assert len(imgs) >= 4
    assert all(im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8 for im in imgs)
