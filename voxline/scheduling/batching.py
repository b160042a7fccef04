"""Which rows ride the next batched decode step, read from the measured step costs.

Newcomers (rows that have sent no audio yet) ride first: k of them together when a k-row step
costs at most (k + 1) / 2 one-row steps, so that their median and worst time to first audio are
no worse than serving them one after another (interleaving); otherwise the oldest alone. A
running row rides when it
must (its slack is shorter than its next chunk takes at this batch size) or when riding is
nearly free: when it slows the step by at most `tolerance` while a newcomer waits for its first
chunk, or, with no newcomer waiting, when it does not lower audio per second. On a GPU (flat
cost) everyone rides; on a CPU (cost growing with rows) newcomers are not delayed by rows that
have audio in hand, nor by rows that will be late whether they ride or not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RowNeed:
    """One candidate row: its slack (seconds until it must have its next chunk; newcomers
    have none) and the decode steps its next chunk still needs."""

    slack_s: float | None
    steps_to_chunk: int

    @property
    def newcomer(self) -> bool:
        return self.slack_s is None


def choose_rows(rows: Sequence[RowNeed], step_cost: Callable[[int], float | None],
                max_rows: int, tolerance: float = 0.15) -> list[int]:
    """Indices of the rows that ride the next step, most urgent first. `rows` come in
    urgency order; `step_cost(n)` is the predicted seconds of an n-row step (None: unknown,
    then the first `max_rows` ride, as plain continuous batching)."""
    if not rows:
        return []
    if step_cost(1) is None:
        return list(range(min(max_rows, len(rows))))
    chosen = _newcomers(rows, step_cost, max_rows)
    waiting_newcomer = bool(chosen)
    for i, row in enumerate(rows):
        if len(chosen) >= max_rows:
            break
        if i in chosen:
            continue
        if _must_ride(row, len(chosen) + 1, step_cost) or _nearly_free(
                len(chosen), step_cost, waiting_newcomer, tolerance):
            chosen.append(i)
    return sorted(chosen, key=lambda i: (not rows[i].newcomer, i)) if chosen else [0]


def _newcomers(rows: Sequence[RowNeed], step_cost: Callable[[int], float | None],
               max_rows: int) -> list[int]:
    """The newcomers that ride together: the most, in arrival order, whose shared step is no
    slower for them than taking turns alone."""
    newcomers = [i for i, r in enumerate(rows) if r.newcomer][:max_rows]
    single = step_cost(1) or 0.0
    best = min(1, len(newcomers))
    for k in range(2, len(newcomers) + 1):
        cost = step_cost(k)
        if cost is not None and cost <= single * (k + 1) / 2:
            best = k
    return newcomers[:best]


def _must_ride(row: RowNeed, rows: int, step_cost: Callable[[int], float | None]) -> bool:
    """Whether riding now is what keeps the row on time: it makes its deadline riding every
    step from now, but not if it first sat out steps of this size for a newcomer (then it needs
    its own steps too). A row late either way does not slow first audio."""
    if row.slack_s is None:
        return False
    needed = row.steps_to_chunk * (step_cost(rows) or 0.0)
    return needed <= row.slack_s <= 2 * needed


def _nearly_free(riding: int, step_cost: Callable[[int], float | None],
                 waiting_newcomer: bool, tolerance: float) -> bool:
    if riding == 0:
        return True
    now, more = step_cost(riding), step_cost(riding + 1)
    if now is None or more is None:
        return False
    if waiting_newcomer:
        return more <= now * (1 + tolerance)
    return (riding + 1) / more >= riding / now
