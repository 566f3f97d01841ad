"""The EOD progress line, as the command prints it."""

from eod.services import ProgressLine


class TestProgressLine:
    def test_reads_rows_percent_rate_and_eta(self):
        line = ProgressLine("interest", 250_000, 1_000_000, 41_000.4, 18.3)

        assert str(line) == "interest  250000/1000000  25%  41,000 rows/s  ETA 18s"

    def test_a_step_without_a_total_shows_no_percent_or_eta(self):
        line = ProgressLine("preconditions", 0, 0, 0.0, None)

        assert str(line) == "preconditions  0/0  -  0 rows/s"
