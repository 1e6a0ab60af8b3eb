"""The project's own tests (the agent can run them: python3 -m unittest)."""

import unittest

from stats import mean, median, spread


class CoreTest(unittest.TestCase):
    def test_mean(self) -> None:
        self.assertEqual(mean([1, 2, 3, 4]), 2.5)

    def test_median_of_odd_length(self) -> None:
        self.assertEqual(median([3, 1, 2]), 2)

    def test_spread(self) -> None:
        self.assertEqual(spread([4, -1, 7]), 8)


if __name__ == "__main__":
    unittest.main()
