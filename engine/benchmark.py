"""Engine latency benchmark: median and p95 per stage with one thread, on ~1 MP photos.

    python -m engine.benchmark [--images DIR] [--repeat 3] [--threads 1] [--runtime onnx|torch] [--policy FIELD=VALUE ...]

Without --images it renders synthetic 1200x850 card photos (about 1 MP), so it
runs anywhere. Prints figures; it is not a timed test.
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

import bin_tables

from engine.evaluate import iter_images
from engine.machine import cpu_description


def synthetic_photos(n: int, seed: int = 0) -> list[bytes]:
    from engine.synth.card import LAYOUTS, luhn_complete, random_number, render_card
    from engine.synth.scene import photo_of_card

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        # Real card numbers pass Luhn; the renderer's training mix also has numbers that do not,
        # which the engine refuses only after every second-chance read: not what is timed here.
        layout = str(rng.choice(["4444", "44443", "6-13", "19"]))
        number = ""
        while not bin_tables.is_valid_pan(number):  # a known issuer's prefix and length, as on real cards
            number = luhn_complete(random_number(rng, sum(LAYOUTS[layout]))[:-1])
        img, _ = photo_of_card(render_card(rng, number=number, layout=layout).image, rng, size=(1200, 850))
        out.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="*", default=None)
    ap.add_argument("--n", type=int, default=20, help="synthetic photos when no --images")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--weights", default=None, help="weights folder to time (default: the shipped engine/weights)")
    ap.add_argument("--runtime", choices=("onnx", "torch"), default=None, help="what evaluates the networks (default: onnx where installed)")
    ap.add_argument("--policy", nargs="*", default=[], metavar="FIELD=VALUE", help="policy fields to change, to time a rule (engine/policy.py)")
    args = ap.parse_args(argv)

    from engine import Engine
    from engine.pipeline import WEIGHTS_DIR
    from engine.policy import DEFAULT_POLICY, with_overrides

    policy = with_overrides(DEFAULT_POLICY, args.policy)
    engine = Engine.load(args.weights or WEIGHTS_DIR, threads=args.threads, runtime=args.runtime, policy=policy)
    if args.images:
        photos = [open(p, "rb").read() for p in iter_images(args.images)]
    else:
        photos = synthetic_photos(args.n)
    engine.read_batch(photos[:2])  # warm-up
    stages: dict[str, list[float]] = {}
    walls = []
    pixels = []
    for _ in range(args.repeat):
        for data in photos:
            t = time.perf_counter()
            out = engine.read_batch([data])[0]
            walls.append((time.perf_counter() - t) * 1000)
            if hasattr(out, "timings_ms"):
                pixels.append(out.image_size[0] * out.image_size[1])
                for k, v in out.timings_ms.items():
                    stages.setdefault(k, []).append(v)

    def p(values, q):
        return round(float(np.percentile(values, q)), 1)

    print(f"cpu: {cpu_description()}")
    print(f"policy {policy.version}" + (f" with {' '.join(args.policy)}" if args.policy else ""))
    print(f"images {len(photos)} x {args.repeat}, threads {args.threads}, median size {statistics.median(pixels) / 1e6 if pixels else 0:.2f} MP")
    # The stage rows are over the photos read; a refusal (after every second-chance crop) is in `wall` only.
    print(f"read {len(pixels) // args.repeat}/{len(photos)} photos; the rest refused (no card found, or not read with confidence)")
    print(f"{'stage':10s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for k, v in stages.items():
        print(f"{k:10s} {p(v, 50):8.1f} {p(v, 95):8.1f}")
    print(f"{'wall':10s} {p(walls, 50):8.1f} {p(walls, 95):8.1f}  (all reads, errors included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
