"""CTC decoding over per-column class probabilities (T x K, class 0 blank): the prefix beam
search that lists the likeliest labelings with their total probability, and the Viterbi
alignment of one labeling (which columns carry which label, and how sure each one is).

Generic: nothing here knows about card numbers (engine/number_decoder.py does).
"""
from __future__ import annotations

import numpy as np

Labels = tuple[int, ...]


def prefix_beam_search(probs: np.ndarray, beam: int = 16, prune: float = 1e-3) -> list[tuple[Labels, float]]:
    """The `beam` likeliest labelings of `probs` (T x K, rows summing to 1, class 0 blank), each
    with its probability summed over every path that spells it, best first. Classes below
    `prune` in a column are not extended there (they would not change the beam)."""
    beams: dict[Labels, tuple[float, float]] = {(): (1.0, 0.0)}  # labels -> (ends in blank, ends in label)
    log_scale = 0.0  # what the beam's probabilities were divided by, column by column
    for row in probs:
        candidates = np.flatnonzero(row >= prune)
        if len(candidates) == 1 and candidates[0] == 0:  # nothing but blank: the common case, made cheap
            beams = {labels: ((pb + pnb) * float(row[0]), 0.0) for labels, (pb, pnb) in beams.items()}
            continue
        nxt: dict[Labels, list[float]] = {}

        def add(labels: Labels, pb: float, pnb: float) -> None:
            cur = nxt.setdefault(labels, [0.0, 0.0])
            cur[0] += pb
            cur[1] += pnb

        blank = float(row[0])
        for labels, (pb, pnb) in beams.items():
            total = pb + pnb
            add(labels, total * blank, 0.0)
            last = labels[-1] if labels else -1
            for k in candidates:
                if k == 0:
                    continue
                p = float(row[k])
                if k == last:
                    add(labels, 0.0, pnb * p)  # the same label held on
                    add(labels + (int(k),), 0.0, pb * p)  # repeated after a blank
                else:
                    add(labels + (int(k),), 0.0, total * p)
        ranked = sorted(nxt.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:beam]
        scale = sum(pb + pnb for _, (pb, pnb) in ranked) or 1.0  # renormalised: no underflow on long lines
        beams = {labels: (pb / scale, pnb / scale) for labels, (pb, pnb) in ranked}
        log_scale += float(np.log(scale))
    out = [(labels, pb + pnb) for labels, (pb, pnb) in beams.items()]
    return [(labels, float(np.exp(np.log(max(p, 1e-300)) + log_scale))) for labels, p in sorted(out, key=lambda x: -x[1])]


def align(probs: np.ndarray, labels: Labels) -> list[tuple[int, int, float]] | None:
    """The likeliest single path spelling `labels`: for each label, (first column, last column,
    its highest probability over those columns); None when no path fits in T columns."""
    if not labels:
        return []
    T = probs.shape[0]
    ext = np.zeros(2 * len(labels) + 1, np.int64)  # blank, label, blank, label, ..., blank
    ext[1::2] = labels
    S = len(ext)
    logp = np.log(np.maximum(probs[:, ext], 1e-30))  # T x S
    # A state may be entered from itself, the state before, or (a label differing from the label
    # two states back) skipping the blank between them.
    skip = np.zeros(S, bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    score = np.full(S, -np.inf)
    score[:2] = logp[0, :2]
    back = np.zeros((T, S), np.int8)  # 0: stayed, 1: from s-1, 2: from s-2
    for t in range(1, T):
        stay, step, jump = score, np.r_[-np.inf, score[:-1]], np.where(skip, np.r_[-np.inf, -np.inf, score[:-2]], -np.inf)
        options = np.stack([stay, step, jump])
        back[t] = options.argmax(0)
        score = options.max(0) + logp[t]
    s = S - 1 if score[S - 1] >= score[S - 2] else S - 2
    if not np.isfinite(score[s]):
        return None
    states = [s]
    for t in range(T - 1, 0, -1):
        s -= int(back[t, s])
        states.append(s)
    states.reverse()
    spans: dict[int, list[int]] = {}
    for t, s in enumerate(states):
        if s % 2:  # a label state: label index s // 2
            spans.setdefault(s // 2, []).append(t)
    return [(cols[0], cols[-1], float(probs[cols, labels[i]].max())) for i, cols in sorted(spans.items())]
