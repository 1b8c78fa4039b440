"""Timing loops: per-call wall time (perf_counter_ns), medians, and a time budget so the slow
peers at wide radii do not take the whole run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class Timed:
    """Per-call times in microseconds and how many calls were made."""

    micros: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.micros)

    @property
    def count(self) -> int:
        return len(self.micros)


def time_each(
    call: Callable[[Any], Any],
    queries: Sequence[Any],
    check: Callable[[int, Any], None],
    budget_s: float,
    min_calls: int,
) -> Timed:
    """Calls ``call(q)`` for each query in order, timing each call alone, and checks each answer
    right after (outside the timed span). Stops early once ``budget_s`` of wall time is spent and
    at least ``min_calls`` calls were made."""
    micros: list[float] = []
    deadline = time.monotonic() + budget_s
    for position, query in enumerate(queries):
        started = time.perf_counter_ns()
        answer = call(query)
        elapsed = time.perf_counter_ns() - started
        micros.append(elapsed / 1000.0)
        check(position, answer)
        del answer
        if position + 1 >= min_calls and time.monotonic() > deadline:
            break
    return Timed(micros)


def time_batch(
    call: Callable[[], Any],
    batch_size: int,
    check: Callable[[Any], None],
    repeats: int,
    min_total_s: float = 0.25,
    max_repeats: int = 30,
) -> Timed:
    """Times whole-batch calls; each figure is the batch time divided by its size (µs per
    query). At least ``repeats`` calls, more (up to ``max_repeats``) while the timed total is
    under ``min_total_s``: a batch of fast queries takes a millisecond, and one noisy
    millisecond on a shared machine would decide the ratio. Every answer of every repeat goes
    through ``check``."""
    micros: list[float] = []
    total_ns = 0
    while len(micros) < repeats or (total_ns < min_total_s * 1e9 and len(micros) < max_repeats):
        started = time.perf_counter_ns()
        answer = call()
        elapsed = time.perf_counter_ns() - started
        total_ns += elapsed
        micros.append(elapsed / 1000.0 / batch_size)
        check(answer)
        del answer
    return Timed(micros)
