"""CTC decoding over per-column class probabilities (T x K, class 0 blank): the prefix beam
search that lists the likeliest labelings with their total probability, and the Viterbi
alignment of one labeling (which columns carry which label, and how sure each one is).

Generic: nothing here knows about card numbers (engine/number_decoder.py does).
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Pattern:
    """A set of labelings as a graph: node i stands for class `classes[i]`; each path along
    `edges` from a node of `starts` to a node of `ends` spells one labeling (MM/YY: a node per
    digit a place may hold, so every MM/YY and MM/20YY takes 55 nodes)."""

    classes: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]


def spot(probs: np.ndarray, pattern: Pattern, around: np.ndarray | None = None) -> tuple[float, list[tuple[int, int, int, float]]] | None:
    """The labeling of `pattern` that costs least to read somewhere in `probs`, the columns around
    it reading as one of the classes `around` (blank among them; None: any class): its cost, and
    for each of its labels (node, first column, last column, its highest probability there); None
    when none fits.

    A path's cost is what it loses (log, <= 0) against each column's likeliest class, so a
    labeling the best path already spells, among classes of `around`, costs nothing wherever it
    stands; one that needs a weak class somewhere (a faint '/') costs that column's shortfall,
    and so does a column around it that reads surely as a class not in `around`.
    """
    T, n = probs.shape[0], len(pattern.classes)
    logp = np.log(np.maximum(probs, 1e-30))
    shortfall = logp - logp.max(1, keepdims=True)  # T x K, <= 0
    outside = np.zeros(T) if around is None else shortfall[:, around].max(1)
    # States: 0 before the labeling, 1 + i node i, 1 + n + i the blank after node i, S - 1 after it.
    S = 2 * n + 2
    node, blank, after = 1 + np.arange(n), 1 + n + np.arange(n), S - 1
    moves = np.full((S, S), -np.inf)  # log weight of the move from state a to state b: 0 or impossible
    moves[0, 0] = moves[after, after] = 0.0
    moves[0, node[list(pattern.starts)]] = 0.0
    moves[node, node] = moves[node, blank] = moves[blank, blank] = 0.0
    for i, j in pattern.edges:
        moves[blank[i], node[j]] = 0.0
        if pattern.classes[i] != pattern.classes[j]:  # the same class twice needs a blank between
            moves[node[i], node[j]] = 0.0
    ends = list(pattern.ends)
    moves[node[ends], after] = moves[blank[ends], after] = 0.0
    gain = np.empty((T, S))
    gain[:, 0] = gain[:, after] = outside
    gain[:, node] = shortfall[:, list(pattern.classes)]
    gain[:, blank] = shortfall[:, [0]]
    score = np.full(S, -np.inf)
    score[0] = gain[0, 0]
    score[node[list(pattern.starts)]] = gain[0, node[list(pattern.starts)]]
    back = np.zeros((T, S), np.int32)
    for t in range(1, T):
        options = score[:, None] + moves
        back[t] = options.argmax(0)
        score = options[back[t], np.arange(S)] + gain[t]
    finals = np.r_[after, node[ends]]
    s = int(finals[np.argmax(score[finals])])
    if not np.isfinite(score[s]) or s == 0:
        return None
    cost = float(score[s])
    states = [s]
    for t in range(T - 1, 0, -1):
        s = int(back[t, s])
        states.append(s)
    states.reverse()
    spans: dict[int, list[int]] = {}
    for t, s in enumerate(states):
        if 1 <= s <= n:
            spans.setdefault(s - 1, []).append(t)
    return cost, [(i, cols[0], cols[-1], float(probs[cols, pattern.classes[i]].max())) for i, cols in sorted(spans.items(), key=lambda kv: kv[1][0])]
