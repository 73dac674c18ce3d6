#!/usr/bin/env python3
"""Point-in-time training set: Quiver's files provider against DuckDB's ASOF JOIN.

Generates LABELS label rows and SOURCES feature sources of ROWS rows each as Parquet
(with DuckDB, deterministic; reused when the directory already holds the same scale),
then times, back to back in the same run and REPEAT times each,
  - Quiver: `providers/files/examples/pit_bench.rs` (build_training_set, Parquet output),
  - DuckDB: chained `ASOF LEFT JOIN`s written to Parquet,
each in its own process, reporting wall time and peak RSS (from wait4), and the medians.
Finally checks both outputs hold the same rows (`EXCEPT ALL` both ways).

Usage: pip install duckdb; python3 benches/pit_vs_duckdb.py [--labels N] [--rows N]
       [--sources N] [--repeat N] [--dir DIR]
Each flag also reads an environment variable: PIT_LABELS, PIT_ROWS, PIT_SOURCES,
PIT_REPEAT, PIT_DIR (the flag wins). The issue's scale is `--rows 5000000`.

Differences to keep in mind: DuckDB's ASOF JOIN has no created_ts / value tie-break
(Quiver's semantics do), and Quiver's binary is built in the dev profile with
dependencies at opt-level 1 and the provider at opt-level 3 (see CARGO_FLAGS).
"""

import argparse
import json
import os
import statistics
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

    scale = json.dumps({"labels": labels, "rows": rows, "sources": sources, "users": users})
    marker = directory / "scale.json"
    if marker.exists() and marker.read_text() == scale:
        print(f"reusing the data in {directory}")
        return
    print(f"generating {labels} labels, {sources} x {rows} source rows in {directory}")
    con = duckdb.connect()
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
    marker.write_text(scale)


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


def quiver_output(directory: Path) -> Path:
    variant = directory / "_quiver" / "outputs" / "training_set" / "bench" / "v1"
    manifest = json.loads((variant / "_manifest.json").read_text())
    return variant / "runs" / manifest["run"] / manifest["files"][0]


def differing_rows(directory: Path, sources: int) -> int:
    """Rows in one output and not the other (as multisets)."""
    import duckdb

    columns = ", ".join(["user_id", "ts", *(f"f{i}" for i in range(sources)), "label"])
    quiver = f"(SELECT {columns} FROM read_parquet('{quiver_output(directory)}'))"
    duck = f"(SELECT {columns} FROM read_parquet('{directory}/duckdb_out.parquet'))"
    con = duckdb.connect()
    return sum(
        con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0]
        for a, b in [(quiver, duck), (duck, quiver)]
    )


def main() -> None:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=int(env("PIT_LABELS", 1_000_000)))
    parser.add_argument("--rows", type=int, default=int(env("PIT_ROWS", 1_000_000)))
    parser.add_argument("--sources", type=int, default=int(env("PIT_SOURCES", 5)))
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=int(env("PIT_REPEAT", 3)))
    parser.add_argument("--dir", type=Path, default=Path(env("PIT_DIR", REPO / "target" / "pit-bench")))
    parser.add_argument("--binary", type=Path, help="a prebuilt pit_bench (skips cargo build)")
    args = parser.parse_args()

    directory = args.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    generate(directory, args.labels, args.rows, args.sources, args.users)

    binary = args.binary
    if binary is None:
        subprocess.run(
            ["cargo", "build", "-q", "-p", "quiver-provider-files", "--example", "pit_bench", *CARGO_FLAGS],
            cwd=REPO,
            check=True,
        )
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        binary = target / "debug" / "examples" / "pit_bench"

    engines = {
        "quiver files provider": [str(binary), str(directory), str(args.sources)],
        "duckdb ASOF JOIN": [sys.executable, "-c", DUCKDB_SCRIPT, str(directory), str(args.sources)],
    }
    runs: dict[str, list[dict]] = {name: [] for name in engines}
    header = f"{'engine':<22}{'run':>5}{'build (s)':>12}{'process (s)':>14}{'peak RSS (MiB)':>17}"
    print(f"\n{header}", flush=True)
    for run in range(1, args.repeat + 1):
        # Back to back, so load from other processes on the machine hits both alike.
        for name, command in engines.items():
            r = measure(command)
            runs[name].append(r)
            print(f"{name:<22}{run:>5}{r['seconds']:>12.2f}{r['wall_seconds']:>14.2f}{r['peak_rss_mib']:>17.1f}", flush=True)

    print(f"\nmedians of {args.repeat} runs")
    medians = {}
    for name, results in runs.items():
        medians[name] = {k: statistics.median(r[k] for r in results) for k in ["seconds", "wall_seconds", "peak_rss_mib"]}
        m = medians[name]
        print(f"{name:<22}{'':>5}{m['seconds']:>12.2f}{m['wall_seconds']:>14.2f}{m['peak_rss_mib']:>17.1f}")
    quiver, duck = medians.values()
    print(
        f"\nQuiver / DuckDB: {quiver['wall_seconds'] / duck['wall_seconds']:.2f}x the process time, "
        f"{quiver['peak_rss_mib'] / duck['peak_rss_mib']:.2f}x the peak RSS"
    )
    print(f"rows in one output and not the other: {differing_rows(directory, args.sources)}")


if __name__ == "__main__":
    main()
