"""The engine's thresholds, in one versioned object. A reading depends on the weights and on
this; `Policy.version` goes into what the engine reports about itself, so that figures can be
tied to the policy they were measured with.

Each value was chosen on synthetic cards, the real windows and realcards-dev (engine/README.md
says how); none on realcards-dev2, which checks them.
"""
from __future__ import annotations

from typing import Literal

import msgspec


class Policy(msgspec.Struct, frozen=True):
    version: str = "8"
    # Locating: heat above which a heatmap cell belongs to a line; cells a number line needs.
    number_peak: float = 0.5
    date_peak: float = 0.5
    min_line_cells: int = 12
    weaker_line_share: float = 0.25  # a view whose number line has under this share of the strongest view's cells is not read
    # Bands: rows above and below the located line, in line heights. The band runs the card's
    # whole width, so no crop cuts a digit off at the ends.
    number_band_margin: float = 0.5
    # The band reaches this share of the card's width past each side of the outline (read from the
    # photo), for an outline found a little inside the card; and follows the line's slope where
    # the locator sees it aslant (an outline a little off in perspective).
    number_band_past_edges: float = 0.03
    number_band_follows_slope: bool = True
    # A number band longer than this many of its heights is squeezed to it (640 px at a height
    # of 48): the recognizer's cost is in its width, and it reads 19 digits in 9.3 heights as
    # well as in 21 (synthetic seed 7, realcards-dev); at 8 it drops digits.
    number_band_max_aspect: float = 13.34
    # Where the weights hold a fast recognizer (textrec_fast.pt: 40 rows, about two thirds of the
    # cost), it reads a number band first; where it reads no valid number with at least
    # min_fast_number_confidence of the beam, the recognizer reads the band and its reading stands.
    fast_number_reads: bool = True
    min_fast_number_confidence: float = 0.8
    # A date band: the located date's rows, at least date_band_min_height number-line heights tall,
    # date_band_margin of that above and below, reaching date_band_left / _right line heights
    # past the box (the locator's box often misses the first digits; a label sits to the left).
    date_band_margin: float = 0.1
    date_band_min_height: float = 0.8
    date_band_left: float = 0.5
    date_band_right: float = 0.8
    date_label_left: float = 2.0  # its label is read from a band of its rows reaching this far left of it
    # The constrained number decoder (engine/number_decoder.py).
    beam_width: int = 24
    beam_prune: float = 1e-3
    pan_lengths: tuple[int, ...] = (13, 14, 15, 16, 17, 18, 19)
    # A card number's first digit, its major industry identifier (ISO/IEC 7812): 0 is assigned to
    # no card issuer, so a reading that starts with it is no card number, valid or not (a blank
    # band read as 0000000000010).
    pan_first_digits: str = "123456789"
    # Length prior (engine/number_decoder.length_prior): 1 for a length the BIN table lists for
    # the number's issuer or network, this for one it does not; where the table knows nothing of
    # the number, most cards are 16 digits and Chinese debit cards often 19.
    mismatched_length_prior: float = 0.01
    unknown_bin_length_prior: dict[int, float] = msgspec.field(default_factory=lambda: {16: 0.6, 19: 0.25, 15: 0.03, 18: 0.03, 17: 0.02, 14: 0.02, 13: 0.01})
    min_length_prior: float = 0.05  # a valid reading less believable than this is no answer: for a number the
    # table does not know, only 16 and 19 digits (a card read upside down gave a valid 15-digit "number")
    # A number is answered when its share of the valid readings' probability (with the length
    # prior) is at least this, and the valid readings hold at least min_valid_mass of the beam.
    min_number_posterior: float = 0.6
    min_valid_mass: float = 0.1
    # Fallbacks, each where nothing else answered (engine/README.md has their ablation):
    text_line_fallback: bool = True  # long text lines in the pixels where the locator sees no number line
    quarter_turn_fallback: bool = True  # the outline's quarter turns, rectified portrait: vertical cards
    # Fewer digits than this on every view: not a card at all (NoCardFound, not Unreadable).
    min_digits_for_card: int = 10
    # Whose date heat says where the dates are, in order, each asked only where those before it
    # see no date: "locator" (the number line's locator, whose heat is there already) and
    # "date_locator" (the locator fine-tuned on dates as real cards print them). The date locator
    # first reads more synthetic expiries but misreads two realcards-dev years (engine/README.md).
    date_heat: tuple[Literal["date_locator", "locator"], ...] = ("locator", "date_locator")
    # Dates: a date is answered when its characters' mean probability is at least this.
    min_date_confidence: float = 0.8
    # Where a date band's best path spells no date: the likeliest date in it with nothing but
    # letters and blanks around (engine.dates.spot_date), answered if that reading is at least
    # this share as likely as the best path (0: not looked for).
    min_date_spot_share: float = 0.05


DEFAULT_POLICY = Policy()


def with_overrides(policy: Policy, pairs: list[str]) -> Policy:
    """`policy` with "field=value" settings applied (values in JSON: true, 0.5, [16, 19])."""
    import json

    changes = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in Policy.__struct_fields__:
            raise ValueError(f"no policy field {key!r}")
        changes[key] = json.loads(value)
    return msgspec.convert(msgspec.structs.asdict(policy) | changes, Policy)
