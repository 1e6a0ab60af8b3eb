"""Hidden grader tests: copied next to the agent's workspace only while grading."""

import unittest

from stats import mean, median, spread


class HiddenTest(unittest.TestCase):
    def test_median_of_even_length(self) -> None:
        self.assertEqual(median([4, 1, 3, 2]), 2.5)

    def test_median_of_two(self) -> None:
        self.assertEqual(median([10, 20]), 15)

    def test_median_of_odd_length(self) -> None:
        self.assertEqual(median([5, 3, 9, 1, 7]), 5)

    def test_median_of_one(self) -> None:
        self.assertEqual(median([42]), 42)

    def test_median_of_empty_raises(self) -> None:
        with self.assertRaises(ValueError):
            median([])

    def test_mean_and_spread_unchanged(self) -> None:
        self.assertEqual(mean([2, 4]), 3)
        self.assertEqual(spread([2, 4]), 2)


if __name__ == "__main__":
    unittest.main()
