#!/usr/bin/env python3
"""Point-in-time training set: Quiver's files provider against DuckDB's ASOF JOIN.

Generates LABELS label rows and SOURCES feature sources of ROWS rows each as Parquet
(with DuckDB, deterministic), then in the same run times
  - DuckDB: chained `ASOF LEFT JOIN`s written to Parquet, and
  - Quiver: `providers/files/examples/pit_bench.rs` (build_training_set, Parquet output),
each in its own process, reporting wall time and peak RSS (from wait4).

Usage: pip install duckdb; python3 benches/pit_vs_duckdb.py [--labels N] [--rows N]
       [--sources N] [--dir DIR]

Differences to keep in mind: DuckDB's ASOF JOIN has no created_ts / value tie-break
(Quiver's semantics do), and Quiver's binary is built in the dev profile with
dependencies at opt-level 1 and the provider at opt-level 3 (see CARGO_FLAGS).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CARGO_FLAGS = [
    "--config",
    "profile.dev.package.quiver-provider-files.opt-level=3",
]


def generate(directory: Path, labels: int, rows: int, sources: int, users: int) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    start = "TIMESTAMP '2024-01-01'"
    con.execute(
        f"""COPY (SELECT (hash(i, 1) % {users})::BIGINT AS user_id,
                         {start} + to_microseconds((hash(i, 2) % 31536000000000)::BIGINT) AS ts,
                         (hash(i, 3) % 2)::BIGINT AS label
                  FROM range({labels}) t(i))
            TO '{directory}/labels.parquet' (FORMAT parquet)"""
    )
    for s in range(sources):
        con.execute(
            f"""COPY (SELECT (hash(i, {10 + s}) % {users})::BIGINT AS user_id,
                             {start} + to_microseconds((hash(i, {20 + s}) % 31536000000000)::BIGINT) AS ts,
                             (hash(i, {30 + s}) % 1000000)::DOUBLE / 100 AS v
                      FROM range({rows}) t(i))
                TO '{directory}/source_{s}.parquet' (FORMAT parquet)"""
        )


DUCKDB_SCRIPT = """
import sys, time, duckdb
directory, sources = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
joins = "".join(
    f" ASOF LEFT JOIN read_parquet('{directory}/source_{i}.parquet') s{i}"
    f" ON l.user_id = s{i}.user_id AND l.ts >= s{i}.ts"
    for i in range(sources)
)
columns = ", ".join(f"s{i}.v AS f{i}" for i in range(sources))
started = time.perf_counter()
con.execute(
    f"COPY (SELECT l.user_id, l.ts, {columns}, l.label"
    f" FROM read_parquet('{directory}/labels.parquet') l{joins})"
    f" TO '{directory}/duckdb_out.parquet' (FORMAT parquet)"
)
print('{"seconds": %.3f}' % (time.perf_counter() - started))
"""


def measure(command: list[str]) -> dict:
    """Run `command`, returning its JSON line plus wall time and peak RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    output = process.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{output}")
    result = json.loads(output.strip().splitlines()[-1])
    result["wall_seconds"] = round(wall, 3)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is KiB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sources", type=int, default=5)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=REPO / "target" / "pit-bench")
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.labels} labels, {args.sources} x {args.rows} source rows in {args.dir}")
    generate(args.dir.resolve(), args.labels, args.rows, args.sources, args.users)

    subprocess.run(
        ["cargo", "build", "-q", "-p", "quiver-provider-files", "--example", "pit_bench", *CARGO_FLAGS],
        cwd=REPO,
        check=True,
    )
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    quiver = measure([str(target / "debug" / "examples" / "pit_bench"), str(args.dir.resolve()), str(args.sources)])
    duck = measure([sys.executable, "-c", DUCKDB_SCRIPT, str(args.dir.resolve()), str(args.sources)])

    print(f"\n{'engine':<22}{'build (s)':>12}{'process (s)':>14}{'peak RSS (MiB)':>17}")
    for name, r in [("quiver files provider", quiver), ("duckdb ASOF JOIN", duck)]:
        print(f"{name:<22}{r['seconds']:>12.2f}{r['wall_seconds']:>14.2f}{r['peak_rss_mib']:>17.1f}")


if __name__ == "__main__":
    main()
