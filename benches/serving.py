#!/usr/bin/env python3
"""Online serving and materialization against Redis: Quiver beside its peers, one run.

What it does, on one machine and one private Redis (a `redis-server` this script starts on
a free port, without persistence, stopped at the end):

1. Builds `quiver` (with the `redis` feature) and `quiver-bench` in the `perf` cargo profile
   (Cargo.toml: dependencies at opt-level 1, the request path at 3; no release build).
2. Generates with DuckDB, deterministically, `serving.parquet` (SERVING_ENTITIES users × 50
   float features) and `materialize.parquet` (--entities users × 50 float features).
3. Starts `quiver serve` (embedded metadata store; `--quiver-threads N` passes
   `--worker-threads N`) with a `files` provider and a `redis` provider, applies 50 features over `serving.parquet` and waits for their materialization.
4. Materialization: `redis-benchmark` HSET with pipelining on the same Redis (the
   ceiling: one field written per command), then 50 features over `materialize.parquet`
   applied and timed from apply until the last job succeeded. Rows = feature values
   written (entities × features), the unit of the HSET ceiling.
5. Feast (`feast[redis]` from PyPI, in its own virtualenv): a repository over the same
   `serving.parquet` on the same Redis, `feast materialize`, then `feast serve`.
6. Checks that Quiver and Feast answer the same values as the Parquet file for a few users.
7. Loads, each with `quiver-bench` (one thread, 32 keep-alive connections, the same
   fixed-seed request sequence for every target), shapes 1×50 and 100×50:
   - fixed rate (default 500 req/s): Quiver over HTTP, and a raw pipelined `HMGET` of the
     same keys and fields straight from Redis (Quiver's added latency = the difference);
   - maximum throughput: the HTTP floor (a minimal axum JSON endpoint, `quiver-bench
     floor`), Quiver, and `feast serve` (Feast after all the others: its workers work
     through a backlog after a saturated run).
8. Prints a table with the issue's targets and writes every figure to --out (JSON).

Usage: python3 benches/serving.py [--entities 1000000] [--rate 500] [--seconds 20]
       [--max-seconds 10] [--feast-workers 2] [--quiver-threads 0] [--skip-materialize]
       [--skip-feast] [--skip-serving]
Needs: cargo, redis-server and redis-benchmark (Debian's redis-server package), Python 3.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/quiver/target"))
CACHE = Path.home() / ".cache/quiver"
VENV = CACHE / "feast-venv"
FEAST_REQUIREMENT = "feast[redis]==0.67.0"
FEATURES = 50
SERVING_ENTITIES = 10_000
# The materialization benchmark's users start here, apart from the serving users, so the
# hashes the serving benchmark reads hold exactly its 50 features (a user in both sets
# would hold 100 fields, and Redis looks fields up in a small hash by a linear scan).
MATERIALIZE_FIRST_ID = 100_000_000
# Every timestamp lies in this day, so Feast's materialize window is easy to state.
DAY = "2026-01-01"

children: list[subprocess.Popen] = []


def log(message: str) -> None:
    print(f"serving-bench: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], log_path: Path, **kwargs) -> subprocess.Popen:
    out = open(log_path, "w")
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    children.append(process)
    return process


def stop_all() -> None:
    for process in reversed(children):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in children:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for(what: str, check, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"serving-bench: {what} did not come up within {timeout:.0f} s")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def get(url: str):
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.load(answer)


def venv() -> Path:
    python = VENV / "bin/python"
    if not python.exists():
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import feast, duckdb, redis"], capture_output=True
    )
    if probe.returncode != 0:
        log(f"installing {FEAST_REQUIREMENT} and duckdb into {VENV} (from PyPI)")
        subprocess.run(
            [str(VENV / "bin/pip"), "install", "-q", FEAST_REQUIREMENT, "duckdb"], check=True
        )
    return python


def build() -> tuple[Path, Path]:
    log("building quiver (--features redis) and quiver-bench in the perf profile")
    subprocess.run(
        ["cargo", "build", "-q", "--profile", "perf", "-p", "quiver-cli",
         "--features", "quiver-cli/redis", "-p", "quiver-bench"],
        cwd=REPO, check=True, env={**os.environ, "CARGO_TARGET_DIR": str(TARGET)},
    )
    return TARGET / "perf/quiver", TARGET / "perf/quiver-bench"


def generate(python: Path, data: Path, entities: int) -> None:
    data.mkdir(parents=True, exist_ok=True)
    script = f"""
import duckdb, sys
con = duckdb.connect()
def write(name, rows, first):
    cols = ", ".join(f"(hash(i, {{f}}) % 1000000)::DOUBLE / 100 AS f{{f:02}}" for f in range({FEATURES}))
    con.execute(f\"\"\"COPY (SELECT (i + {{first}})::BIGINT AS user_id,
                     TIMESTAMP '{DAY}' + to_seconds((i % 86400)::BIGINT) AS ts, {{cols}}
              FROM range({{rows}}) t(i)) TO '{data}/{{name}}' (FORMAT parquet)\"\"\")
write('serving.parquet', {SERVING_ENTITIES}, 0)
write('materialize.parquet', {entities}, {MATERIALIZE_FIRST_ID})
"""
    marker = data / "scale.json"
    scale = json.dumps({"serving": SERVING_ENTITIES, "materialize": entities,
                        "first": MATERIALIZE_FIRST_ID, "features": FEATURES})
    if marker.exists() and marker.read_text() == scale:
        log(f"reusing the data in {data}")
        return
    log(f"generating {SERVING_ENTITIES} and {entities} users × {FEATURES} features in {data}")
    subprocess.run([str(python), "-c", script], check=True)
    marker.write_text(scale)


def expected_values(python: Path, data: Path, users: list[int]) -> dict:
    script = f"""
import duckdb, json
rows = duckdb.connect().execute(
    "SELECT user_id, f00, f49 FROM '{data}/serving.parquet' WHERE user_id IN ({','.join(map(str, users))})"
).fetchall()
print(json.dumps({{str(u): [a, b] for u, a, b in rows}}))
"""
    out = subprocess.run([str(python), "-c", script], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def definitions(prefix: str, source: str, path: str, redis_port: int, with_providers: bool) -> str:
    docs = []
    if with_providers:
        docs += [
            "kind: user\nname: bench\n",
            "kind: provider\nname: bench-files\nowner: bench\nconfig:\n  type: files\n  root: ./data\n",
            f"kind: provider\nname: bench-redis\nowner: bench\nconfig:\n  type: redis\n"
            f"  address: 127.0.0.1:{redis_port}\n",
            "kind: entity\nname: user\nowner: bench\n",
        ]
    docs.append(
        f"kind: source\nname: {source}\nvariant: v1\nowner: bench\nprovider: bench-files\n"
        f"file:\n  path: {path}\n  format: parquet\n"
    )
    for f in range(FEATURES):
        docs.append(
            f"kind: feature\nname: {prefix}{f:02}\nvariant: v1\nowner: bench\nentity: user\n"
            f"source: {source}\nentity_column: user_id\nvalue_column: f{f:02}\n"
            f"value_type: float64\ntimestamp_column: ts\nonline_provider: bench-redis\n"
        )
    return "---\n".join(docs)


def jobs(url: str) -> list[dict]:
    return get(f"{url}/api/v1/jobs?limit=500")["items"]


def wait_jobs(url: str, job_ids: set[int], what: str) -> list[dict]:
    last = ""
    while True:
        mine = [j for j in jobs(url) if j["id"] in job_ids]
        states = {}
        for j in mine:
            states[j["state"]] = states.get(j["state"], 0) + 1
        failed = [j for j in mine if j["state"] in ("failed", "cancelled")]
        if failed:
            raise SystemExit(f"serving-bench: {what}: job {failed[0]['id']} {failed[0]['state']}: {failed[0].get('error')}")
        done = sum(j.get("progress_done") or 0 for j in mine)
        line = f"{what}: {states} rows {done:,}"
        if line != last:
            log(line)
            last = line
        if len(mine) == len(job_ids) and all(j["state"] == "succeeded" for j in mine):
            return mine
        time.sleep(0.5)


def apply(quiver: Path, url: str, defs: Path) -> set[int]:
    before = {j["id"] for j in jobs(url)}
    subprocess.run([str(quiver), "apply", "--server", url, "-f", str(defs)], check=True,
                   stdout=subprocess.DEVNULL)
    return {j["id"] for j in jobs(url)} - before


def redis_benchmark_hset(port: int) -> float:
    # One field per HSET, random keys over 1M hashes, 16 commands per pipeline, in
    # database 1 (flushed after) so it never meets Quiver's keys.
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "--dbnum", "1", "-t", "hset", "-P", "16",
         "-n", "5000000", "-r", "1000000", "-q"],
        check=True, capture_output=True, text=True,
    ).stdout
    rate = float(re.findall(r"HSET: ([0-9.]+) requests per second", out.replace("\r", "\n"))[-1])
    subprocess.run(["redis-cli", "-p", str(port), "-n", "1", "FLUSHDB"], check=True,
                   stdout=subprocess.DEVNULL)
    return rate


def feast_repo(repo: Path, data: Path, redis_port: int) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        f"""project: bench
registry: {repo}/registry.db
provider: local
online_store:
  type: redis
  connection_string: "127.0.0.1:{redis_port}"
offline_store:
  type: file
entity_key_serialization_version: 3
"""
    )
    fields = ", ".join(f'Field(name="f{f:02}", dtype=Float64)' for f in range(FEATURES))
    (repo / "features.py").write_text(
        f"""from datetime import timedelta
from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
source = FileSource(path="{data}/serving.parquet", timestamp_field="ts")
bench = FeatureView(name="bench", entities=[user], ttl=timedelta(days=3650),
                    schema=[{fields}], online=True, source=source)
"""
    )


def bench(tool: Path, args: list[str]) -> dict:
    out = subprocess.run([str(tool), *args], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Other work on the machine skews every figure: keep the load next to it.
    result["loadavg_1m"] = os.getloadavg()[0]
    log(json.dumps(result))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entities", type=int, default=1_000_000,
                        help="users in the materialization benchmark (default 1M)")
    parser.add_argument("--rate", type=int, default=500, help="fixed rate, req/s")
    parser.add_argument("--seconds", type=int, default=20, help="measured seconds per fixed-rate run")
    parser.add_argument("--max-seconds", type=int, default=10, help="measured seconds per max-throughput run")
    parser.add_argument("--feast-workers", type=int, default=2, help="feast serve worker processes")
    parser.add_argument("--quiver-threads", type=int, default=0,
                        help="quiver serve --worker-threads (0: its default, one per core); "
                             "1 gives the lowest 1x50 latency here (BENCHMARKS.md)")
    parser.add_argument("--skip-materialize", action="store_true")
    parser.add_argument("--skip-feast", action="store_true")
    parser.add_argument("--skip-serving", action="store_true",
                        help="only the materialization benchmark (no Feast, no loads)")
    parser.add_argument("--data", type=Path, default=CACHE / "bench-serving")
    parser.add_argument("--out", type=Path, default=REPO / "target-bench-serving.json")
    args = parser.parse_args()

    python = venv()
    quiver, tool = build()
    generate(python, args.data, args.entities)
    work = Path(tempfile.mkdtemp(prefix="quiver-serving-bench."))
    (work / "data").symlink_to(args.data)
    results: dict = {"machine": {"cores": os.cpu_count()}, "quiver_threads": args.quiver_threads,
                     "runs": []}
    try:
        redis_port = free_port()
        start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(work)], work / "redis.log")
        wait_for("redis-server", lambda: port_open(redis_port))
        redis_url = f"redis://127.0.0.1:{redis_port}"

        quiver_port = free_port()
        url = f"http://127.0.0.1:{quiver_port}"
        threads = [] if args.quiver_threads == 0 else ["--worker-threads", str(args.quiver_threads)]
        start([str(quiver), "serve", "--data-dir", str(work / ".quiver"),
               "--listen", f"127.0.0.1:{quiver_port}", *threads], work / "quiver.log", cwd=work,
              env={**os.environ, "RUST_LOG": "warn"})
        wait_for("quiver serve", lambda: port_open(quiver_port))

        log("materializing the 50 serving features (10k users)")
        defs = work / "serving.yaml"
        defs.write_text(definitions("bench_f", "bench_serving", "serving.parquet", redis_port, True))
        wait_jobs(url, apply(quiver, url, defs), "serving features")

        if not args.skip_materialize:
            log("redis-benchmark HSET -P 16 (the write ceiling)")
            hset = redis_benchmark_hset(redis_port)
            log(f"HSET ceiling: {hset:,.0f} fields/s")
            defs = work / "materialize.yaml"
            defs.write_text(definitions("mat_f", "bench_materialize", "materialize.parquet", redis_port, False))
            started = time.time()
            done = wait_jobs(url, apply(quiver, url, defs), "materialization")
            elapsed = time.time() - started
            values = args.entities * FEATURES
            results["materialization"] = {
                "entities": args.entities, "features": FEATURES, "values": values,
                "seconds": elapsed, "values_per_s": values / elapsed,
                "hset_ceiling_per_s": hset, "ratio": values / elapsed / hset,
                "jobs": len(done),
            }
            log(json.dumps(results["materialization"]))

        if not args.skip_serving:
            feast_url = None
            if not args.skip_feast:
                repo = work / "feast"
                feast_repo(repo, args.data, redis_port)
                feast = str(VENV / "bin/feast")
                log("feast apply and materialize (10k users)")
                subprocess.run([feast, "-c", str(repo), "apply"], check=True, stdout=subprocess.DEVNULL)
                subprocess.run([feast, "-c", str(repo), "materialize", "2025-12-31T00:00:00",
                                "2026-01-03T00:00:00"], check=True, stdout=subprocess.DEVNULL)
                feast_port = free_port()
                start([feast, "-c", str(repo), "serve", "-p", str(feast_port), "--workers",
                       str(args.feast_workers), "--no-access-log", "--max-requests", "1000000000"],
                      work / "feast.log")
                wait_for("feast serve", lambda: port_open(feast_port), timeout=120)
                feast_url = f"http://127.0.0.1:{feast_port}"

            # Same values from every server as in the Parquet file.
            users = [0, 7, 4242, 9999]
            expected = expected_values(python, args.data, users)
            answer = post(f"{url}/api/v1/online-features",
                          {"features": ["bench_f00:v1", "bench_f49:v1"],
                           "entities": {"user": [str(u) for u in users]}})
            for row in answer["results"]:
                got = [v["value"] for v in row["values"]]
                if got != expected[row["entity"]]:
                    raise SystemExit(f"serving-bench: quiver answered {got} for {row['entity']}, "
                                     f"the file holds {expected[row['entity']]}")
            if feast_url:
                answer = post(f"{feast_url}/get-online-features",
                              {"features": ["bench:f00", "bench:f49"], "entities": {"user_id": users}})
                names = answer["metadata"]["feature_names"]
                columns = {n: r["values"] for n, r in zip(names, answer["results"])}
                for i, u in enumerate(users):
                    got = [columns["f00"][i], columns["f49"][i]]
                    if got != expected[str(u)]:
                        raise SystemExit(f"serving-bench: feast answered {got} for {u}, "
                                         f"the file holds {expected[str(u)]}")
            log("quiver" + (" and feast" if feast_url else "") + " serve the file's values")

            floor_port = free_port()
            start([str(tool), "floor", "--listen", f"127.0.0.1:{floor_port}"], work / "floor.log")
            wait_for("the HTTP floor", lambda: port_open(floor_port))

            common = ["--pool", str(SERVING_ENTITIES)]
            for batch in (1, 100):
                shape = ["--batch", str(batch), *common]
                fixed = ["--rate", str(args.rate), "--seconds", str(args.seconds)]
                most = ["--seconds", str(args.max_seconds)]
                runs = results["runs"]
                runs.append(bench(tool, ["http", "--target", "quiver", "--url",
                                         f"{url}/api/v1/online-features", "--format", "quiver",
                                         *shape, *fixed]))
                runs.append(bench(tool, ["hmget", "--redis", redis_url, *shape, *fixed]))
                runs.append(bench(tool, ["http", "--target", "http-floor", "--url",
                                         f"http://127.0.0.1:{floor_port}/api/v1/online-features",
                                         "--format", "quiver", *shape, *most]))
                runs.append(bench(tool, ["http", "--target", "quiver", "--url",
                                         f"{url}/api/v1/online-features", "--format", "quiver",
                                         *shape, *most]))
            # Feast last: its workers keep working through a backlog after a saturated
            # run, which would load the machine during the next measurement.
            for batch in (1, 100) if feast_url else ():
                runs.append(bench(tool, ["http", "--target", "feast", "--url",
                                         f"{feast_url}/get-online-features", "--format", "feast",
                                         "--batch", str(batch), *common,
                                         "--seconds", str(args.max_seconds)]))
    finally:
        stop_all()
        # The private Redis kept nothing on disk; the metadata store and logs go too.
        shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2))
    summarize(results, args)


def summarize(results: dict, args) -> None:
    def find(target, shape, mode):
        for r in results["runs"]:
            if (r["target"], r["shape"], r["mode"]) == (target, shape, mode):
                return r
        return None

    print()
    print(f"{'shape':8} {'target':12} {'mode':16} {'req/s':>9} {'p50':>9} {'p99':>9} {'late p99':>9}")
    for r in results["runs"]:
        mode = f"{r['mode']} {r['rate']}" if r["mode"] == "fixed-rate" else "max"
        print(f"{r['shape']:8} {r['target']:12} {mode:16} {r['throughput_rps']:9.0f} "
              f"{r['p50_us'] / 1000:7.3f}ms {r['p99_us'] / 1000:7.3f}ms {r['late_p99_us'] / 1000:7.3f}ms")
    print()
    checks = []
    for shape, p99_target in (("1x50", 2.0), ("100x50", 10.0)):
        q = find("quiver", shape, "fixed-rate")
        raw = find("redis-hmget", shape, "fixed-rate")
        qmax = find("quiver", shape, "max")
        floor = find("http-floor", shape, "max")
        feast = find("feast", shape, "max")
        if q:
            checks.append((f"{shape} p99 at {args.rate} req/s", f"{q['p99_us'] / 1000:.2f} ms",
                           f"<= {p99_target} ms", q["p99_us"] / 1000 <= p99_target))
        if q and raw:
            added = q["p50_us"] - raw["p50_us"]
            checks.append((f"{shape} added p50 over raw HMGET", f"{added} µs "
                           f"({q['p50_us']} vs {raw['p50_us']})", "<= 150 µs", added <= 150))
        if qmax and floor:
            ratio = qmax["throughput_rps"] / floor["throughput_rps"]
            checks.append((f"{shape} max throughput / HTTP floor", f"{ratio:.2f} "
                           f"({qmax['throughput_rps']:.0f} / {floor['throughput_rps']:.0f})",
                           ">= 0.5", ratio >= 0.5))
        if qmax and feast:
            ratio = qmax["throughput_rps"] / feast["throughput_rps"]
            checks.append((f"{shape} max throughput / feast serve", f"{ratio:.1f} "
                           f"({qmax['throughput_rps']:.0f} / {feast['throughput_rps']:.0f})",
                           ">= 50", ratio >= 50))
    m = results.get("materialization")
    if m:
        checks.append(("materialization / HSET ceiling",
                       f"{m['ratio']:.2f} ({m['values_per_s']:,.0f} / {m['hset_ceiling_per_s']:,.0f} values/s; "
                       f"{m['entities']:,} × {m['features']} in {m['seconds']:.1f} s)",
                       ">= 0.5", m["ratio"] >= 0.5))
    for name, value, target, ok in checks:
        print(f"{'met ' if ok else 'MISS'} {name:42} {value:48} target {target}")
    print(f"\nfigures written to {args.out}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        stop_all()
        raise
