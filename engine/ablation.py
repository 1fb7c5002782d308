"""Each fallback rule switched off in turn, on the sets rules may be chosen on (realcards-dev's
Luhn-valid full cards and a synthetic draw), to see whether it earns its place.

    python -m engine.ablation --labels ../shared/data/realcards-dev/labels.tsv --seed 5151 --n 120

Prints one row per variant: numbers exact / wrong but Luhn-valid / expiry exact, per set.
"""
from __future__ import annotations

import argparse

import bin_tables
from engine.eval_synth import run as run_synth
from engine.evaluate import run_labels, summarize
from engine.machine import cpu_description
from engine.policy import DEFAULT_POLICY, with_overrides

VARIANTS = {
    "engine as shipped": [],
    "no text-line fallback": ["text_line_fallback=false"],
    "no quarter-turn fallback": ["quarter_turn_fallback=false"],
    "no date locator (dates from the locator's heat)": ['date_heat=["locator"]'],
    "the date locator's heat first, the locator's where it sees none": ['date_heat=["date_locator", "locator"]'],
    "wide date bands (0.45 margin, 1.5 left)": ["date_band_margin=0.45", "date_band_left=1.5"],
    "policy 5's number band (level, the located box's height, 0.35 margin, at the outline)": ["number_band_follows_slope=false", "number_band_margin=0.35", "number_band_past_edges=0", "number_band_max_aspect=21.34"],
    "level number band, the located box's height": ["number_band_follows_slope=false"],
    "number band stops at the outline": ["number_band_past_edges=0"],
    "number band not squeezed (up to 1024 px)": ["number_band_max_aspect=21.34"],
    "no date spotting": ["min_date_spot_share=0"],
    "no fast recognizer (every number band read at 48 rows)": ["fast_number_reads=false"],
    "fast recognizer answers any valid reading": ["min_fast_number_confidence=0"],
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", required=True)
    ap.add_argument("--seed", type=int, required=True, help="the synthetic draw's seed")
    ap.add_argument("--n", type=int, default=120)
    args = ap.parse_args(argv)
    from engine import Engine

    print(f"machine: {cpu_description()}")
    print("| variant | dev numbers | dev wrong-valid | dev expiry | synthetic numbers | synthetic wrong-valid | synthetic expiry |")
    print("|---|---|---|---|---|---|---|")
    for name, pairs in VARIANTS.items():
        engine = Engine.load(policy=with_overrides(DEFAULT_POLICY, pairs))
        dev = summarize([o for o in run_labels(engine, args.labels) if bin_tables.luhn_valid(o.truth)])
        syn = run_synth(engine, args.seed, args.n)
        exact = round(dev["exact_number"] * dev["images"])
        expiry = round(dev["expiry_exact_where_labelled"] * dev["expiry_labelled"])
        print(f"| {name} | {exact}/{dev['images']} | {dev['wrong_but_luhn_valid']} | {expiry}/{dev['expiry_labelled']} "
              f"| {round(syn['exact_number'] * syn['photos'])}/{syn['photos']} | {syn['wrong_but_luhn_valid']} | {syn['expiry_exact_where_printed']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
