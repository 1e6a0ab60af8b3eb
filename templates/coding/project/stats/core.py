"""Mean, median and spread of a sequence of numbers."""

from __future__ import annotations

from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean of a non-empty sequence."""
    if not values:
        raise ValueError("mean() of an empty sequence")
    return sum(values) / len(values)


def median(values: Sequence[float]) -> float:
    """The middle value of a non-empty sequence (the mean of the two middle ones when
    the length is even)."""
    if not values:
        raise ValueError("median() of an empty sequence")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid] + ordered[mid + 1]) / 2


def spread(values: Sequence[float]) -> float:
    """The distance between the largest and the smallest value."""
    if not values:
        raise ValueError("spread() of an empty sequence")
    return max(values) - min(values)
