//! Harness for the end-to-end tests in `tests/tests/`: run the `quiver` command line,
//! start `quiver serve` on a free port and wait until it is ready, create and drop a
//! fresh Postgres database.
//!
//! Which binary: integration tests only get `CARGO_BIN_EXE_<name>` for binaries of their
//! own package, and a path like `target/debug/quiver` is only there after someone ran
//! `cargo build -p quiver-cli` (and may be stale, or elsewhere when `CARGO_TARGET_DIR`
//! is set). So this package builds `quiver-under-test`, a binary whose `main` is
//! `quiver_cli::main` exactly like the `quiver` binary's: cargo rebuilds it before every
//! test run, with `cargo test` and `cargo nextest` alike. Tests pass its path in with
//! `env!("CARGO_BIN_EXE_quiver-under-test")`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root, where relative paths in tests start.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The quickstart definitions directory.
pub fn quickstart_defs() -> PathBuf {
    repo_root().join("examples/quickstart/defs")
}

/// Generate the quickstart's card transactions and labels into `dir/data`, ending at
/// today's midnight so the freshest aggregates are within the online features' max_age
/// of 2 days.
pub fn generate_quickstart_data(dir: &Path, seed: u64, users: usize) {
    let end = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    quiver_quickstart_data::generate(&quiver_quickstart_data::Options {
        dir: dir.join("data"),
        seed,
        users,
        end,
    })
    .expect("generate the quickstart data");
}

/// Copy a directory tree (definitions) so a test can change it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Write `text` to `dir/relative`, creating directories.
pub fn write_file(dir: &Path, relative: &str, text: &str) -> PathBuf {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create directory");
    std::fs::write(&path, text).expect("write file");
    path
}

/// Replace `from` by `to` in a file, insisting that `from` is there.
pub fn edit_file(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read file");
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).expect("write file");
}

/// The `quiver` binary under test.
#[derive(Debug, Clone)]
pub struct Quiver {
    bin: PathBuf,
}

/// What one command did.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Assert exit status 0 and return self.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "quiver {:?} failed:\n{}{}",
            self.args,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Assert the exit status and that stderr is exactly one `error: …` line; return it.
    #[track_caller]
    pub fn error_line(&self, code: i32) -> &str {
        assert_eq!(
            self.code,
            Some(code),
            "quiver {:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout,
            self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "quiver {:?}: expected one line on stderr, got:\n{}",
            self.args,
            self.stderr
        );
        assert!(
            lines[0].starts_with("error: "),
            "quiver {:?}: {}",
            self.args,
            lines[0]
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        lines[0]
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "quiver {:?}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

impl Quiver {
    pub fn new(bin: &str) -> Self {
        Quiver {
            bin: PathBuf::from(bin),
        }
    }

    /// A command with the environment cleared of settings that would change its target.
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .current_dir(dir)
            .env_remove("QUIVER_SERVER")
            .env_remove("QUIVER_DATABASE_URL")
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE");
        command
    }

    /// Run in the repository root.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in(&repo_root(), args)
    }

    /// Run in `dir`, so relative `-f` paths appear in messages as written.
    pub fn run_in(&self, dir: &Path, args: &[&str]) -> Run {
        self.run_with(dir, &[], args)
    }

    /// Run in `dir` with extra environment variables (`QUIVER_SERVER`, …).
    pub fn run_with(&self, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
        let output = self
            .command(dir, args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Start `quiver serve ARGS --listen 127.0.0.1:0` and wait until `/readyz` answers.
    pub fn serve(&self, args: &[&str]) -> Server {
        self.serve_in(&repo_root(), args)
    }

    /// [`Quiver::serve`] in the working directory `dir`.
    pub fn serve_in(&self, dir: &Path, args: &[&str]) -> Server {
        let mut all: Vec<&str> = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = self
            .command(dir, &all)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));

        // Read the log continuously (a full pipe would block the server), and hand over
        // the URL from the line announcing it.
        let log = Arc::new(Mutex::new(String::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("listening on http://") {
                    let url: String = line[at + "listening on ".len()..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    let _ = url_tx.send(url);
                }
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });

        let mut server = Server {
            child,
            url: String::new(),
            log,
        };
        match url_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => server.url = url,
            Err(_) => panic!(
                "quiver serve did not announce its URL; log:\n{}",
                server.log()
            ),
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if matches!(http_get(&server.url, "/readyz"), Ok((200, _))) {
                break server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("quiver serve exited with {status}; log:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "quiver serve never became ready; log:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A running `quiver serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// The server's process id (it appears in the lease owner of the jobs it runs).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no shutdown, no lease release — a crash.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Send SIGTERM and wait for a graceful exit.
    pub fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for quiver serve") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "quiver serve ignored SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A plain HTTP/1.0 GET: `(status, body)`. Enough for probes; the CLI is the real client.
pub fn http_get(base: &str, path: &str) -> std::io::Result<(u16, String)> {
    http_exchange(base, Duration::from_secs(10), |host| {
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")
    })
}

/// A plain HTTP/1.0 POST of a JSON body: `(status, body)`.
pub fn http_post_json(base: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    http_exchange(base, Duration::from_secs(60), |host| {
        format!(
            "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    })
}

/// Send the request `request(host)` to `base` and read the whole answer (HTTP/1.0: the
/// server closes the connection after it).
fn http_exchange(
    base: &str,
    timeout: Duration,
    request: impl FnOnce(&str) -> String,
) -> std::io::Result<(u16, String)> {
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(request(host).as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:.80}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Make sure something listens on 127.0.0.1:`port`, running `scripts/services.sh` once
/// when nothing does; panics (tests fail, never skip) when it still does not.
pub fn ensure_service(port: u16, what: &str) {
    let up = || {
        TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(2),
        )
        .is_ok()
    };
    if up() {
        return;
    }
    let status = std::process::Command::new(repo_root().join("scripts/services.sh"))
        .status()
        .expect("run scripts/services.sh");
    assert!(
        status.success() && up(),
        "{what} is not listening on 127.0.0.1:{port} and scripts/services.sh could not start it"
    );
}

/// A local port nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("local address").port()
}

/// A closed local port: connecting to it is refused.
pub fn closed_port_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A `redis-server` of a test's own on 127.0.0.1, so stopping it or filling it disturbs
/// no other test. Killed when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Start on a free port, files in `dir`. With `append_only`, every write is fsynced to
    /// an append-only file, as in production, so a restart after `kill -9` keeps the data;
    /// without, it keeps nothing.
    pub fn start(dir: &Path, append_only: bool) -> Self {
        RedisServer::start_on(free_port(), dir, append_only)
    }

    /// [`RedisServer::start`] on a given port (to come back where clients expect it).
    pub fn start_on(port: u16, dir: &Path, append_only: bool) -> Self {
        // The machine's Redis package provides the binary; services.sh installs it.
        ensure_service(6379, "Redis");
        let persistence: &[&str] = if append_only {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(persistence)
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (installed by scripts/services.sh)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        RedisServer { child, port }
    }

    /// `kill -9`, and wait for it to be gone.
    pub fn crash(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything a store holds as the CLI shows it: every kind (all variants) and the jobs.
/// Comparing two snapshots tells whether a command wrote anything. What a server's job
/// coordinator changes on its own while a test runs — resource status, error, revision
/// and update time, job states — is left out, so only definitions and enqueued jobs count.
pub fn catalog_snapshot(quiver: &Quiver, target: &[&str]) -> serde_json::Value {
    let mut snapshot = serde_json::Map::new();
    for kind in [
        "users",
        "providers",
        "entities",
        "sources",
        "features",
        "labels",
        "training-sets",
        "models",
    ] {
        let mut args = vec![
            "list",
            kind,
            "--all-variants",
            "--limit",
            "500",
            "--output",
            "json",
        ];
        args.extend_from_slice(target);
        let mut page = quiver.run(&args).success().json();
        for item in page["items"].as_array_mut().into_iter().flatten() {
            if let Some(item) = item.as_object_mut() {
                for volatile in ["status", "error", "revision", "updated_at"] {
                    item.remove(volatile);
                }
            }
        }
        snapshot.insert(kind.to_string(), page);
    }
    let mut args = vec!["jobs", "--limit", "500", "--output", "json"];
    args.extend_from_slice(target);
    let jobs = quiver.run(&args).success().json();
    let jobs: Vec<serde_json::Value> = jobs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|j| serde_json::json!([j["id"], j["kind"], j["resource"], j["created_at"]]))
        .collect();
    snapshot.insert("jobs".to_string(), serde_json::Value::Array(jobs));
    serde_json::Value::Object(snapshot)
}

/// A database of its own on the Postgres at `DATABASE_URL` (default
/// `postgres://postgres@127.0.0.1:5432/postgres`), dropped when this goes out of scope.
/// A Postgres that does not answer fails the test: service tests never skip.
pub struct TempDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TempDatabase {
    pub fn create() -> Self {
        let admin_url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let name = format!("quiver_e2e_{}", uuid::Uuid::new_v4().simple());
        let url = with_database(&admin_url, &name);
        if let Err(e) = admin_sql(&admin_url, &format!("CREATE DATABASE {name}")) {
            panic!("{e}; is Postgres running? ./scripts/services.sh starts it");
        }
        TempDatabase {
            url,
            admin_url,
            name,
        }
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // Never panic in drop (it may run while a failed test unwinds).
        if let Err(e) = admin_sql(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        ) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &base[..path_start])
}

/// Run one statement on the administrative database.
fn admin_sql(admin_url: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut conn = sqlx::PgConnection::connect(admin_url).await.map_err(|e| {
            format!("cannot connect to Postgres at DATABASE_URL ({admin_url}): {e}")
        })?;
        let result = sqlx::raw_sql(sql).execute(&mut conn).await;
        let _ = conn.close().await;
        result.map(|_| ()).map_err(|e| format!("{sql}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_path_only() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
