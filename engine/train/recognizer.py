"""Train the CTC number/date recognizer.

    python -m engine.train.recognizer --seed 1 --out engine/weights/recognizer.pt [--iters 6000]
    python -m engine.train.recognizer --seed 7 --arch fast --teacher engine/weights/recognizer.pt --out runs/fast.pt

With --teacher the model also learns to match a trained recognizer's per-column probabilities
(distillation): a smaller or differently built recognizer gets the teacher's reading of real
crops, and its confidences, from dense per-column targets instead of CTC alone.

Data: number lines and dates cropped from synthetic cards (engine.synth), plus
real embossed/printed digits from ../shared/data/realcards-dev (4-character
windows, concatenated into pseudo-lines). The 10 real number-line crops there
are kept for validation only. CTC on CPU can sit on the all-blank plateau: a
curriculum (short crops first) and a warm-up get it off quickly.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time

import cv2
import numpy as np
import torch
from torch import nn

from engine.models import RECOGNIZER_ARCHS, NumberRecognizer
from engine.runtime import TorchNetwork, load_network
from engine.preprocess import batch_lines, encode_text, line_input
from engine.synth.card import render_card
from engine.synth.scene import degrade
from engine.evaluate import edit_distance
from engine.train.common import REALCARDS, ctc_greedy, load_labels, save_weights

# ---------------------------------------------------------------- data


def jitter_crop(img: np.ndarray, box, rng: np.random.Generator) -> np.ndarray:
    """Crop a text box with the sloppiness of a real locator: margins, offset, slight tilt."""
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    top = h * rng.uniform(0.05, 0.5)
    bottom = h * rng.uniform(0.05, 0.75)  # the locator's box often takes in the small print below
    left = h * rng.uniform(0.0, 0.8)
    right = h * rng.uniform(0.0, 0.8)
    src = np.float32([[x0 - left, y0 - top], [x1 + right, y0 - top], [x1 + right, y1 + bottom]])
    src += rng.normal(0, h * 0.06, src.shape).astype(np.float32)
    out_h = int(round(h + top + bottom))
    out_w = int(round(w + left + right))
    dst = np.float32([[0, 0], [out_w, 0], [out_w, out_h]])
    M = cv2.getAffineTransform(src, dst)
    return cv2.warpAffine(img, M, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)


def synth_samples(rng: np.random.Generator) -> list[tuple[np.ndarray, str]]:
    card = render_card(rng)
    img = degrade(card.image, rng, strength=rng.uniform(0.3, 1.0))
    out = [(line_input(jitter_crop(img, card.number.box, rng)), card.number.text)]
    for field in (card.expiry, card.issue):
        if field is not None and rng.random() < 0.6:
            out.append((line_input(jitter_crop(img, field.box, rng)), field.text))
    return out


# The real windows' train/validation split. Stages 1-5 split by their own seed, so across the
# shipped chain of fine-tunes no window is truly unseen; from stage 6 on the split is fixed.
SPLIT_SEED = 0


class RealSegments:
    """Real 4-character windows; `_` in the file name marks a blank (a space on the card)."""

    def __init__(self, rng: np.random.Generator, holdout: float = 0.1):
        rows = [r for r in load_labels() if r["kind"] == "number_segment"]
        self.items = []
        for r in rows:
            img = cv2.imread(os.path.join(REALCARDS, r["file"]))
            text = os.path.basename(r["file"])[:4].replace("_", " ")
            if img is not None:
                self.items.append((img, text))
        order = rng.permutation(len(self.items))
        n_val = int(len(order) * holdout)
        self.val = [self.items[i] for i in order[:n_val]]
        self.train = [self.items[i] for i in order[n_val:]]

    def date(self, rng: np.random.Generator, pool: list | None = None) -> tuple[np.ndarray, str]:
        """An embossed/printed date 'AB/CD' made of one real window's four digit cells and a drawn
        slash, sometimes with the small MONTH/YEAR or VALID THRU labels real cards print beside it.
        The real data holds card numbers only; this is how the recognizer sees real-looking dates."""
        pool = self.train if pool is None else pool
        while True:
            img, text = pool[rng.integers(len(pool))]
            if len(text) == 4 and text.isdigit() and img.shape[1] >= 116:
                break
        cells = [img[:, i * 30 : (i + 1) * 30] for i in range(4)]
        slash = _slash_cell(img, rng)
        out = np.hstack(cells[:2] + [slash] + cells[2:])
        if rng.random() < 0.5:
            out = _with_label(out, "MONTH/YEAR" if rng.random() < 0.7 else "VALID THRU", rng, above=True)
        if rng.random() < 0.3:
            out = _with_label(out, "VALID THRU", rng, above=False)
        return _low_res(out, rng), f"{text[:2]}/{text[2:]}"

    def pseudo_line(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        # Mostly whole-number lengths (4-5 windows = 16-20 characters), like the lines the engine cuts.
        k = int(rng.integers(4, 6)) if rng.random() < 0.6 else int(rng.integers(1, 4))
        picks = [self.train[i] for i in rng.integers(0, len(self.train), k)]
        img = np.hstack([p[0] for p in picks])
        text = "".join(p[1] for p in picks)
        text = " ".join(text.split())  # the CTC target collapses repeated blanks like the card does
        h = img.shape[0]
        if rng.random() < 0.4:  # tighter or looser around the digits than the 46 px windows
            top, bottom = int(rng.integers(0, h // 5)), int(rng.integers(0, h // 5))
            img = img[top : h - bottom]
            if rng.random() < 0.5:
                pad = int(rng.integers(2, h // 2))
                img = cv2.copyMakeBorder(img, pad // 2, pad - pad // 2, 0, 0, cv2.BORDER_REPLICATE)
        if rng.random() < 0.5:
            img = degrade(img, rng, strength=0.4)
        return _low_res(img, rng), text


def _ink(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(background colour, stroke colour) of a real window: strokes are its most extreme pixels,
    bright for silver embossing, dark for flat print."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    med, lo, hi = np.median(gray), np.percentile(gray, 3), np.percentile(gray, 97)
    pick = gray >= hi if hi - med > med - lo else gray <= lo
    return np.median(img.reshape(-1, 3), 0), img[pick].mean(0)


def _slash_cell(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h = img.shape[0]
    w = int(rng.integers(16, 28))
    bg, ink = _ink(img)
    cell = np.empty((h, w, 3), np.float32)
    cell[:] = bg
    cell += rng.normal(0, 4, cell.shape)
    t = int(rng.integers(2, 5))
    top, bottom = int(h * rng.uniform(0.12, 0.25)), int(h * rng.uniform(0.75, 0.88))
    cv2.line(cell, (int(w * 0.2), bottom), (int(w * 0.8), top), ink.tolist(), t, cv2.LINE_AA)
    cell = cv2.GaussianBlur(cell, (0, 0), rng.uniform(0.5, 1.2))
    return np.clip(cell, 0, 255).astype(np.uint8)


def _with_label(img: np.ndarray, label: str, rng: np.random.Generator, above: bool) -> np.ndarray:
    """The small print real cards put above (MONTH/YEAR) or left of (VALID THRU) a date."""
    h, w = img.shape[:2]
    bg, ink = _ink(img)
    if above:
        strip = np.empty((int(h * rng.uniform(0.25, 0.45)), w, 3), np.uint8)
        strip[:] = bg.astype(np.uint8)
        scale = strip.shape[0] / 30
        cv2.putText(strip, label, (int(rng.integers(0, w // 4)), strip.shape[0] - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, ink.tolist(), 1, cv2.LINE_AA)
        return np.vstack([strip, img])
    strip = np.empty((h, int(h * rng.uniform(0.8, 1.2)), 3), np.uint8)
    strip[:] = bg.astype(np.uint8)
    scale = h / 110
    for k, word in enumerate(label.split()):
        cv2.putText(strip, word, (2, int(h * (0.45 + 0.3 * k))), cv2.FONT_HERSHEY_SIMPLEX, scale, ink.tolist(), 1, cv2.LINE_AA)
    return np.hstack([strip, img])


def _low_res(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half the time, the detail of a small phone photo: real windows are cut at high resolution,
    but in a 500-pixel-wide photo a number is only 12 to 20 pixels tall."""
    if rng.random() < 0.5:
        f = rng.uniform(14, 26) / img.shape[0]
        if f < 1:
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            if rng.random() < 0.5:
                ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
                img = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return line_input(img)


class SampleStream(torch.utils.data.IterableDataset):
    """Endless batches from a replay buffer refreshed with new synthetic crops (runs in a worker)."""

    def __init__(self, seed: int, batch: int, buffer: int = 2500, real_frac: float = 0.3, curriculum: bool = True, real_date_frac: float = 0.0):
        self.seed, self.batch, self.buffer_size, self.real_frac, self.curriculum = seed, batch, buffer, real_frac, curriculum
        self.real_date_frac = real_date_frac

    def __iter__(self):
        rng = np.random.default_rng(self.seed + 1000)
        real = RealSegments(np.random.default_rng(SPLIT_SEED)) if os.path.isdir(REALCARDS) else None
        buf: list = []
        while len(buf) < self.buffer_size:
            buf.extend(synth_samples(rng))
        step = 0
        while True:
            for _ in range(4):
                new = synth_samples(rng)
                for s in new:
                    buf[rng.integers(len(buf))] = s
            n_real = int(self.batch * self.real_frac) if real else 0
            items = [buf[i] for i in rng.integers(0, len(buf), self.batch - n_real)]
            n_date = int(n_real * self.real_date_frac)
            items += [real.pseudo_line(rng) for _ in range(n_real - n_date)]
            items += [real.date(rng) for _ in range(n_date)]
            # curriculum: early batches favour short crops (dates, single windows)
            if self.curriculum and step < 300:
                items.sort(key=lambda it: len(it[1]))
                items = items[: max(8, self.batch // 2)]
            step += 1
            yield items


def collate(items):
    x = batch_lines([it[0] for it in items])
    targets = [encode_text(it[1]) for it in items]
    return x, targets, [it[1] for it in items]


# ---------------------------------------------------------------- eval


def evaluate(model, samples) -> tuple[float, float]:
    """(exact-match rate ignoring spaces, char error rate) on (input, text) samples."""
    model.eval()
    exact, errs, total = 0, 0, 0
    with torch.no_grad():
        for i in range(0, len(samples), 32):
            chunk = samples[i : i + 32]
            logits = model(batch_lines([c[0] for c in chunk]))
            for (x, text), lg in zip(chunk, logits):
                pred = ctc_greedy(lg.log_softmax(-1))[0].replace(" ", "")
                truth = text.replace(" ", "")
                exact += pred == truth
                errs += edit_distance(pred, truth)
                total += len(truth)
    model.train()
    return exact / max(1, len(samples)), errs / max(1, total)


def real_line_samples() -> list:
    rows = [r for r in load_labels() if r["kind"] == "number_line"]
    return [(line_input(cv2.imread(os.path.join(REALCARDS, r["file"]))), r["card_number"]) for r in rows]


# ---------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="engine/weights/recognizer.pt")
    ap.add_argument("--iters", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", default=None, help="start from these weights (fine-tuning; no curriculum, shorter warm-up)")
    ap.add_argument("--real-frac", type=float, default=0.3, help="share of each batch from real digit windows")
    ap.add_argument("--buffer", type=int, default=2500, help="replay buffer of rendered crops")
    ap.add_argument("--real-date-frac", type=float, default=0.0, help="share of the real samples that are dates built from real digit cells")
    ap.add_argument("--arch", default="crnn", choices=sorted(RECOGNIZER_ARCHS), help="recognizer shape (engine.models.RECOGNIZER_ARCHS)")
    ap.add_argument("--teacher", default=None, help="a trained recognizer whose per-column probabilities to match")
    ap.add_argument("--distill", type=float, default=1.0, help="weight of the teacher's term against CTC")
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    model = NumberRecognizer(args.arch)
    teacher = TorchNetwork(load_network(NumberRecognizer, args.teacher)) if args.teacher else None  # evaluated only
    if args.init:
        model.load_state_dict(torch.load(args.init)["state_dict"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    warmup = 200 if args.init is None else 50
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(i, args.iters) / args.iters))
    )
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    loader = torch.utils.data.DataLoader(
        SampleStream(args.seed, args.batch, buffer=args.buffer, real_frac=args.real_frac, curriculum=args.init is None, real_date_frac=args.real_date_frac), batch_size=None, num_workers=1, collate_fn=collate, prefetch_factor=4
    )

    vrng = np.random.default_rng(args.seed + 7)
    synth_val = [s for _ in range(150) for s in synth_samples(vrng)]
    real_val = real_line_samples() if os.path.isdir(REALCARDS) else []
    segments = RealSegments(np.random.default_rng(SPLIT_SEED)) if os.path.isdir(REALCARDS) else None
    seg_val = [(line_input(img), text) for img, text in segments.val] if segments else []
    drng = np.random.default_rng(args.seed + 11)
    date_val = [segments.date(drng, segments.val) for _ in range(100)] if segments else []

    t0 = time.time()
    best = -1.0
    history = []
    for it, (x, targets, _texts) in enumerate(loader):
        if it >= args.iters:
            break
        logits = model(x)  # N x T x C
        log_probs = logits.log_softmax(-1).transpose(0, 1)  # T x N x C
        flat = torch.tensor([t for ts in targets for t in ts], dtype=torch.long)
        target_lens = torch.tensor([len(ts) for ts in targets], dtype=torch.long)
        input_lens = torch.full((x.shape[0],), log_probs.shape[0], dtype=torch.long)
        loss = ctc(log_probs, flat, input_lens, target_lens)
        if teacher is not None:
            target = teacher(x).log_softmax(-1)  # TorchNetwork: no gradients
            # KL(teacher || student) per column, averaged over columns and lines
            kl = (target.exp() * (target - logits.log_softmax(-1))).sum(-1).mean()
            loss = loss + args.distill * kl
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        if it % 50 == 0:
            print(f"it {it} loss {loss.item():.3f} lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:.0f}s", flush=True)
        if (it % 500 == 0 and it > 0) or it == args.iters - 1:
            s_acc, s_cer = evaluate(model, synth_val)
            r_acc, r_cer = evaluate(model, real_val) if real_val else (0, 0)
            g_acc, g_cer = evaluate(model, seg_val) if seg_val else (0, 0)
            d_acc, _ = evaluate(model, date_val) if date_val else (0, 0)
            rec = dict(it=it, synth_acc=s_acc, synth_cer=s_cer, real_line_acc=r_acc, real_line_cer=r_cer, seg_acc=g_acc, seg_cer=g_cer, real_date_acc=d_acc)
            history.append(rec)
            print("VAL", json.dumps(rec), flush=True)
            score = s_acc + g_acc + r_acc + d_acc
            if score >= best:
                best = score
                save_weights(model, args.out, args=vars(args), module="engine.train.recognizer", metrics=rec, arch=args.arch)
    print("done", time.time() - t0, flush=True)


if __name__ == "__main__":
    main()
