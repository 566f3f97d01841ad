"""The transfer benchmark still runs end to end, at toy scale (seconds, not minutes).

It runs as a subprocess, as a person would run it: the benchmark sets Django up against its
own throwaway database, which must not be this test session's.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(
    r"^RESULT service_c2_tps=(?P<service>[0-9.]+) http_c1_tps=n/a hot_c1_tps=(?P<hot>[0-9.]+)"
    r" pgbench_tpcb_c1_tps=(?P<pgbench>[0-9.]+) ratio_service=(?P<ratio>[0-9]+\.[0-9]{3})"
    r" ratio_http=n/a ratio_hot=[0-9]+\.[0-9]{3}"
    r" fees_limits_cost=(?P<fees_limits>-?[0-9]+\.[0-9]{3})$"
)
SUMMARY = re.compile(r"^SUMMARY outbox_audit_cost=(?P<cost>-?[0-9]+\.[0-9]{3})$", re.MULTILINE)
INTERLEAVED = re.compile(
    r"interleaved \(every worker with (?P<what>outbox\+audit|fees\+limits) for 0.5 s, then"
    r" without\): cost -?[0-9.]+ % \(median of the rounds: (?P<rounds>[^)]*)\)"
)
SPLIT = re.compile(
    r"split \(half the workers with outbox\+audit\): CPU per transfer [-+][0-9.]+ %"
    r" \(median of the rounds: (?P<rounds>[^)]*)\); at saturation"
)


def _bench(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script as a person would, from the repository root."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _database_exists(name: str) -> bool:
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


class TestTransferBenchmarkSmoke:
    def test_a_toy_run_prints_a_result_line_with_a_clean_ledger_and_drops_its_databases(self):
        suffix = os.getpid()
        bank_db, pgbench_db = f"banksim_bench_smoke_{suffix}", f"banksim_pgbench_smoke_{suffix}"

        run = _bench(
            "bench/transfers.py",
            *("--db", bank_db, "--pgbench-db", pgbench_db),
            *("--accounts", "50", "--workers", "1,2", "--clients", "1"),
            *("--duration", "0.6", "--warmup", "0.1", "--rounds", "1", "--interleave-rounds", "2"),
            *("--pgbench-scale", "1", "--pgbench-seconds", "1"),
            *("--skip-http", "--skip-sql-ceiling"),
        )

        assert run.returncode == 0, run.stdout + run.stderr
        lines = run.stdout.strip().splitlines()
        result = RESULT.match(lines[-1])
        assert result is not None, lines[-1]
        assert float(result["service"]) > 0
        assert float(result["hot"]) > 0
        # tps are printed rounded to 0.1, the ratio is computed before rounding.
        expected_ratio = float(result["service"]) / float(result["pgbench"])
        assert abs(float(result["ratio"]) - expected_ratio) < 2e-3
        # A toy run's cost is noise and may be negative; only its presence and range are checked.
        fees_limits = result["fees_limits"]
        assert -1 < float(fees_limits) < 1
        summary = SUMMARY.search(run.stdout)
        assert summary is not None, run.stdout
        assert "service with fees+limits" in run.stdout
        # Both costs are the medians of their interleaved rounds (printed to 0.1 %).
        interleaved = {m["what"]: m["rounds"] for m in INTERLEAVED.finditer(run.stdout)}
        assert interleaved.keys() == {"outbox+audit", "fees+limits"}, run.stdout
        for what, cost in (("outbox+audit", summary["cost"]), ("fees+limits", fees_limits)):
            rounds = [float(c) / 100 for c in interleaved[what].split(", ")]
            assert len(rounds) == 2
            assert abs(float(cost) - statistics.median(rounds)) < 1.5e-3, what
        # Two workers: each split round costs one with the rows and one without.
        split = SPLIT.search(run.stdout)
        assert split is not None, run.stdout
        assert len(split["rounds"].split(", ")) == 4
        assert "ledger_violations(): [] (ledger_verify passed)" in run.stdout
        assert not _database_exists(bank_db)
        assert not _database_exists(pgbench_db)


OUTBOX_RESULT = re.compile(
    r"^RESULT drain_eps=(?P<drain>[0-9.]+) insert_eps=(?P<insert>[0-9.]+)"
    r" lag_p50_ms=[0-9.]+ lag_p99_ms=[0-9.]+ ratio_drain=(?P<ratio>[0-9]+\.[0-9]{2})$"
)
SWEEP = re.compile(
    r"tps by workers: c1 (?P<c1>[0-9.]+), c2 (?P<c2>[0-9.]+); phase 1 runs at c(?P<fastest>[12])"
)
ROUND_COSTS = re.compile(r"the rounds' costs: (-?[0-9.]+), (-?[0-9.]+) %\)")


class TestOutboxBenchmarkSmoke:
    def test_a_toy_run_costs_each_round_publishes_every_event_and_drops_its_database(self):
        bank_db = f"banksim_bench_outbox_smoke_{os.getpid()}"

        run = _bench(
            "bench/outbox.py",
            *("--db", bank_db, "--accounts", "50", "--workers", "1,2"),
            *("--duration", "0.6", "--warmup", "0.1", "--rounds", "2", "--load-duration", "2"),
        )

        # Exit status 0 means no event was left unpublished.
        assert run.returncode == 0, run.stdout + run.stderr
        lines = run.stdout.strip().splitlines()
        result = OUTBOX_RESULT.match(lines[-1])
        assert result is not None, lines[-1]
        expected_ratio = float(result["drain"]) / float(result["insert"])
        assert abs(float(result["ratio"]) - expected_ratio) < 1e-2 * max(1.0, expected_ratio)
        # One warm-up phase, one sweep phase per worker count, then two rounds each way at the
        # fastest count, each round costed on its own pair.
        assert "warm-up, not counted" in run.stdout
        sweep = SWEEP.search(run.stdout)
        assert sweep is not None, run.stdout
        fastest = max((1, 2), key=lambda n: float(sweep[f"c{n}"]))
        assert sweep["fastest"] == str(fastest)
        assert f"service c{fastest}: " in run.stdout
        assert run.stdout.count("without event (round") == 2
        assert ROUND_COSTS.search(run.stdout) is not None, run.stdout
        assert not _database_exists(bank_db)
