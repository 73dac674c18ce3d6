//! Faults of the serving path, against real processes: a Redis online store stopped while
//! `quiver serve` is serving answers `503 provider_unavailable` with `Retry-After` within
//! a bounded time (not a hang, not a 500), and once Redis is back on the same port the
//! server answers again by itself, without a restart.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quiver_e2e::{ensure_service, free_port, http_post_json, write_file, Quiver, RedisServer};
use serde_json::{json, Value};

/// The longest a request may take to report the store down: the Redis provider's 2 s
/// connect and response timeouts, with room for a loaded machine.
const BOUND: Duration = Duration::from_secs(8);

const DEFINITIONS: &str = r#"kind: provider
name: local
owner: e2e
config: {type: files, root: ./data}
---
kind: provider
name: online
owner: e2e
config: {type: redis, address: "127.0.0.1:PORT"}
---
kind: entity
name: user
owner: e2e
---
kind: source
name: tx
variant: v1
owner: e2e
provider: local
file: {path: tx.csv}
---
kind: feature
name: amount
variant: v1
owner: e2e
entity: user
source: tx
value_column: amount
value_type: float64
timestamp_column: ts
online_provider: online
"#;

fn online(url: &str) -> (u16, Value, Duration) {
    let request = json!({"entities": {"user": ["u1", "u2"]}, "features": ["amount"]});
    let started = Instant::now();
    let (status, body) =
        http_post_json(url, "/api/v1/online-features", &request.to_string()).unwrap();
    let elapsed = started.elapsed();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
        elapsed,
    )
}

#[test]
fn redis_down_while_serving_is_a_quick_503_and_service_resumes_when_it_is_back() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(
        dir.join("data/tx.csv"),
        "user,amount,ts\nu1,1.50,2026-01-01T00:00:00Z\nu2,2.50,2026-01-01T00:00:00Z\n",
    )
    .unwrap();
    let redis = RedisServer::start(dir, true);
    let port = redis.port;
    let defs = write_file(
        dir,
        "defs.yaml",
        &DEFINITIONS.replace("PORT", &port.to_string()),
    );
    let q = Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"));
    let data_dir = dir.join(".quiver");
    let server = q.serve_in(dir, &["--data-dir", data_dir.to_str().unwrap()]);
    let remote = ["--server", server.url.as_str()];
    let run = |args: &[&str]| {
        let all: Vec<&str> = args.iter().chain(remote.iter()).copied().collect();
        q.run_in(dir, &all)
    };
    run(&["apply", "-f", defs.to_str().unwrap()]).success();
    run(&["jobs", "wait", "--timeout", "60s"]).success();
    let (status, body, _) = online(&server.url);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["values"][0]["value"], 1.5, "{body}");

    // Redis goes away: every request is a clear 503 within the bound.
    redis.crash();
    for attempt in 0..3 {
        let (status, body, elapsed) = online(&server.url);
        assert_eq!(status, 503, "attempt {attempt}: {body}");
        assert_eq!(body["code"], "provider_unavailable", "{body}");
        eprintln!("attempt {attempt}: 503 after {elapsed:?}");
        assert!(
            body["detail"].as_str().unwrap_or("").contains("online"),
            "the detail names the provider: {body}"
        );
        assert!(
            elapsed < BOUND,
            "attempt {attempt}: answered after {elapsed:?}, bound {BOUND:?}"
        );
    }

    // Redis is back with its data: the same server answers again, without a restart.
    let _redis = RedisServer::start_on(port, dir, true);
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body, _) = online(&server.url);
        if status == 200 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after Redis came back: {status} {body}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        body["results"][0]["values"][0]["status"], "present",
        "{body}"
    );
    assert_eq!(body["results"][1]["values"][0]["value"], 2.5, "{body}");
}

/// A Postgres cluster of our own on a free port (restarting the shared one would disturb
/// every other test): `initdb` + `pg_ctl` from the machine's PostgreSQL packages, run as
/// the `postgres` user when we are root (initdb refuses root).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Self {
        ensure_service(5432, "Postgres"); // installs the packages when absent
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is installed under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let pg = PrivatePostgres {
            dir,
            bin,
            port: free_port(),
        };
        let data = pg.data();
        std::fs::create_dir_all(&data).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let data_arg = data.to_str().unwrap().to_string();
        pg.run(
            "initdb",
            &["-D", &data_arg, "-A", "trust", "-U", "postgres"],
        );
        pg.pg_ctl("start");
        pg
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `tool` of the PostgreSQL installation, as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `pg_ctl start|stop|restart`, waiting for it to finish.
    fn pg_ctl(&self, action: &str) {
        let data = self.data().to_str().unwrap().to_string();
        let log = self.dir.path().join("log").to_str().unwrap().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-m", "fast", "-w", action,
            ],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data().to_str().unwrap().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn the_api_recovers_by_itself_when_postgres_restarts_under_load() {
    let pg = PrivatePostgres::start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let q = Quiver::new(env!("CARGO_BIN_EXE_quiver-under-test"));
    let data_dir = dir.join(".quiver");
    let server = q.serve_in(
        dir,
        &[
            "--database-url",
            &pg.url(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
    );
    let defs = write_file(
        dir,
        "defs.yaml",
        "kind: entity\nname: user\nowner: e2e\n---\nkind: entity\nname: merchant\nowner: e2e\n",
    );
    q.run_in(
        dir,
        &[
            "apply",
            "-f",
            defs.to_str().unwrap(),
            "--server",
            &server.url,
        ],
    )
    .success();

    // Load: a client reading the catalog as fast as it can, recording every answer.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::<(u16, Duration, String)>::new()));
    let client = {
        let (stop, answers, url) = (stop.clone(), answers.clone(), server.url.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let (status, body) = quiver_e2e::http_get(&url, "/api/v1/entities")
                    .unwrap_or((0, "connection failed".into()));
                answers
                    .lock()
                    .unwrap()
                    .push((status, started.elapsed(), body));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // Down for two seconds, then back (a restart with a visible outage).
    pg.pg_ctl("stop");
    std::thread::sleep(Duration::from_secs(2));
    pg.pg_ctl("start");
    let restarted = Instant::now();

    // Without touching the server: reads and writes work again.
    let deadline = restarted + Duration::from_secs(30);
    loop {
        let done = q.run_in(
            dir,
            &[
                "apply",
                "-f",
                defs.to_str().unwrap(),
                "--server",
                &server.url,
            ],
        );
        if done.code == Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the API did not recover: {}\n{}",
            done.stderr,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered_after = restarted.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();

    let answers = answers.lock().unwrap();
    let ok = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let unavailable = answers.iter().filter(|(s, _, _)| *s == 503).count();
    eprintln!(
        "{} requests: {ok} × 200, {unavailable} × 503; writes worked again {recovered_after:?} after the restart",
        answers.len()
    );
    let slowest = answers.iter().map(|(_, e, _)| *e).max().unwrap_or_default();
    eprintln!("slowest answer: {slowest:?}");
    for (status, elapsed, body) in answers.iter() {
        // Only success or a clear "store unavailable, retry": never a 500, a hang or a
        // dropped connection.
        assert!(
            *status == 200 || (*status == 503 && body.contains("store_unavailable")),
            "{status} after {elapsed:?}: {body}"
        );
        assert!(
            *elapsed < BOUND + Duration::from_secs(4),
            "{status} took {elapsed:?}"
        );
    }
    let last = answers.last().unwrap();
    assert_eq!(last.0, 200, "reads work again: {}", last.2);
}
