"""Score the engine on a fresh synthetic draw, split by what the photos vary in.

    python -m engine.eval_synth --seed 424242 --n 160

Each photo is a card rendered from the seed (embossed or flat, a layout of engine.synth's,
dates as real cards print them) with a Luhn-valid number of a known issuer, photographed at a
random quarter turn plus a tilt. Prints the overall figures and the exact share per split
(embossed/flat, 16/19 digits, layout, orientation). Use a seed no training run used: training
seeds draw cards from `seed` and `seed + 5000`.
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np

import bin_tables
from engine.errors import EngineError
from engine.machine import cpu_description


def draw(rng: np.random.Generator):
    """(photo JPEG, facts) for one synthetic card."""
    from engine.synth.card import LAYOUT_WEIGHTS, LAYOUTS, luhn_complete, random_number, render_card
    from engine.synth.scene import photo_of_card

    layout = str(rng.choice(list(LAYOUT_WEIGHTS), p=list(LAYOUT_WEIGHTS.values())))
    number = ""
    while not bin_tables.is_valid_pan(number):
        number = luhn_complete(random_number(rng, sum(LAYOUTS[layout]))[:-1])
    embossed = bool(rng.random() < 0.5)
    card = render_card(rng, number=number, layout=layout, embossed=embossed, varied_dates=True)
    turn = int(rng.integers(4)) * 90
    img, _ = photo_of_card(card.image, rng, angle=turn + float(rng.uniform(-12, 12)))
    facts = {"number": number, "expiry": card.expiry.text if card.expiry else "", "embossed": "embossed" if embossed else "flat", "digits": str(len(number)), "layout": layout, "turn": str(turn)}
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(), facts


def run(engine, seed: int, n: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        data, facts = draw(rng)
        try:
            r = engine.read(data)
            got, valid, expiry = r.number, r.number_valid, r.expiry.text if r.expiry else ""
        except EngineError:
            got, valid, expiry = None, False, ""
        rows.append((facts, got, valid, expiry))
    right = sum(f["number"] == g for f, g, _, _ in rows)
    dated = [(f, e) for f, _, _, e in rows if f["expiry"]]
    splits: dict[str, dict[str, list[bool]]] = {}
    for f, g, _, _ in rows:
        for key in ("embossed", "digits", "layout", "turn"):
            splits.setdefault(key, {}).setdefault(f[key], []).append(f["number"] == g)
    return {
        "seed": seed,
        "photos": n,
        "exact_number": round(right / max(n, 1), 4),
        "wrong_but_luhn_valid": sum(g is not None and g != f["number"] and bin_tables.luhn_valid(g) for f, g, _, _ in rows),
        "refused": sum(g is None for _, g, _, _ in rows),
        "expiry_exact_where_printed": f"{sum(f['expiry'] == e for f, e in dated)}/{len(dated)}",
        "expiry_wrong": sum(bool(e) and e != f["expiry"] for f, e in dated),
        "expiry_invented": sum(bool(e) for f, _, _, e in rows if not f["expiry"]),
        "splits": {k: {v: f"{sum(x)}/{len(x)}" for v, x in sorted(d.items())} for k, d in splits.items()},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--n", type=int, default=160)
    ap.add_argument("--weights", default=None)
    args = ap.parse_args(argv)
    from engine import Engine
    from engine.pipeline import WEIGHTS_DIR

    engine = Engine.load(args.weights or WEIGHTS_DIR)
    report = run(engine, args.seed, args.n)
    report["machine"] = cpu_description()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
