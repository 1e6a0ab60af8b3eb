"""stats: small descriptive statistics over sequences of numbers."""

from stats.core import mean, median, spread

__all__ = ["mean", "median", "spread"]
