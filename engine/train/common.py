"""Helpers shared by the training scripts: the dev data location, labels, saving weights, CTC decode."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import torch

from engine.dates import greedy_text
from engine.models import ALPHABET

# ../shared/data/realcards-dev next to the checkout; read at training/eval time only, never shipped.
REALCARDS = os.environ.get(
    "CARDGATE_REALCARDS",
    os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "..", "shared", "data", "realcards-dev"),
)


def load_labels(path: str | None = None) -> list[dict]:
    path = path or os.path.join(REALCARDS, "labels.tsv")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def save_weights(model: torch.nn.Module, out: str, *, args: dict, module: str, metrics: dict, arch: str | None = None) -> None:
    """Weights (fp16 to stay small) plus how they were made: command, seed, commit, metrics."""
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    state = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()) for k, v in model.state_dict().items()}
    command = f"python -m {module} " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in args.items() if v is not None)
    torch.save({"state_dict": state, "command": command, "seed": args.get("seed"), "commit": commit, "metrics": metrics, "python": sys.version.split()[0]} | ({"arch": arch} if arch else {}), out)


def ctc_greedy(log_probs: torch.Tensor) -> tuple[str, list[float], list[int]]:
    """Best path decode of T x C log-probs -> (text, per-char confidence, per-char column)."""
    return greedy_text(log_probs.exp().numpy(), ALPHABET)


class BufferedStream(torch.utils.data.IterableDataset):
    """Endless batches from a replay buffer that a worker refreshes with new samples.

    Rendering is slower than a training step on CPU; a buffer lets every new
    sample be seen a few times while still streaming fresh data.
    """

    def __init__(self, make_samples, seed: int, batch: int, buffer: int = 1500, fresh_per_batch: int = 6):
        self.make_samples, self.seed, self.batch, self.buffer, self.fresh = make_samples, seed, batch, buffer, fresh_per_batch

    def __iter__(self):
        import numpy as np

        rng = np.random.default_rng(self.seed + 1000)
        buf: list = []
        while len(buf) < self.buffer:
            buf.extend(self.make_samples(rng))
        while True:
            for _ in range(self.fresh):
                for s in self.make_samples(rng):
                    buf[rng.integers(len(buf))] = s
            picks = [buf[i] for i in rng.integers(0, len(buf), self.batch)]
            yield torch.from_numpy(np.stack([p[0] for p in picks])), torch.from_numpy(np.stack([p[1] for p in picks]))


def dice_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE plus dice per channel, over the pixels a target knows: a target of -1 is no label
    (a real photo's dates, where only its number line is boxed)."""
    known = (target >= 0).float()
    target = target.clamp(min=0)
    bce = (torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none") * known).sum() / known.sum().clamp(min=1)
    p = logits.sigmoid() * known
    inter = (p * target).sum((2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((2, 3)) + target.sum((2, 3)) + 1)
    return bce + dice[known.sum((2, 3)) > 0].mean()


def heat_iou(logits: torch.Tensor, target: torch.Tensor) -> float:
    """IoU of the heat above 0.5 with the target, over the pixels the target knows (>= 0)."""
    pred = (logits.sigmoid() > 0.5) & (target >= 0)
    return ((pred & (target > 0.5)).sum() / ((pred | (target > 0.5)).sum() + 1)).item()


def train_heatmap_model(model, make_samples, val_samples, args, module: str, batch: int = 24, extra_val=None) -> None:
    """The loop shared by the card segmenter and the line locator (dice + BCE on heatmaps).
    `extra_val(model)`, if given, adds figures to each validation record (they do not choose)."""
    import time

    import numpy as np

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    if args.init:
        blob = torch.load(args.init, map_location="cpu", weights_only=False)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / 100) * 0.5 * (1 + np.cos(np.pi * min(i, args.iters) / args.iters))
    )
    stream = BufferedStream(make_samples, args.seed, batch, buffer=args.buffer, fresh_per_batch=args.fresh)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=1, prefetch_factor=4)
    vx = torch.from_numpy(np.stack([v[0] for v in val_samples]))
    vy = torch.from_numpy(np.stack([v[1] for v in val_samples]))
    t0, best = time.time(), float("inf")
    for it, (x, y) in enumerate(loader):
        if it >= args.iters:
            break
        loss = dice_bce(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if it % 50 == 0:
            print(f"it {it} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        if (it % 250 == 0 and it > 0) or it == args.iters - 1:
            model.eval()
            with torch.no_grad():
                logits = model(vx)
                vloss = dice_bce(logits, vy).item()
                iou = heat_iou(logits, vy)
            model.train()
            rec = {"it": it, "val_loss": vloss, "val_iou": iou} | (extra_val(model) if extra_val else {})
            print("VAL", rec, flush=True)
            if vloss < best:
                best = vloss
                save_weights(model, args.out, args=vars(args), module=module, metrics=rec)
    print("done", time.time() - t0, flush=True)


def heatmap_args(doc: str, out: str, iters: int):
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=out)
    ap.add_argument("--iters", type=int, default=iters)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    ap.add_argument("--buffer", type=int, default=1200, help="replay buffer of rendered samples")
    ap.add_argument("--fresh", type=int, default=2, help="newly rendered cards per batch (rendering costs more than a step)")
    return ap
