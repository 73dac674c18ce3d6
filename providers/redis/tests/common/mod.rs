//! What the Redis tests share: the server (started through `scripts/services.sh` when it
//! does not answer), a fresh store per test in its own key namespace (removed when the
//! guard drops), and a TCP proxy that counts round trips and can be cut and restored.

#![allow(dead_code)] // each test binary uses its own part

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use quiver_provider_redis::{keys, RedisOnlineStore, RedisOptions};
use quiver_provider_testkit::online::SharedOnlineStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

/// The server tests use when `QUIVER_TEST_REDIS_URL` is not set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

pub fn test_url() -> String {
    std::env::var("QUIVER_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// `host:port` of the test server.
pub fn test_host_port() -> String {
    let url = test_url();
    let rest = url.strip_prefix("redis://").unwrap_or(&url);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = rest.split('/').next().unwrap_or(rest);
    if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:6379")
    }
}

fn reachable(addresses: &[SocketAddr]) -> bool {
    addresses
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok())
}

/// Make sure the test server accepts connections, running `scripts/services.sh` once per
/// process when it does not.
///
/// # Panics
/// When it is still unreachable: tests that need Redis fail, they never skip.
pub fn ensure_server() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = READY.get_or_init(|| {
        let target = test_host_port();
        let addresses: Vec<SocketAddr> = target
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {target}: {e}"))?
            .collect();
        if reachable(&addresses) {
            return Ok(());
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/services.sh");
        eprintln!(
            "redis at {target} is not reachable; running {}",
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .status()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", script.display()));
        }
        if reachable(&addresses) {
            Ok(())
        } else {
            Err(format!(
                "redis at {target} is still unreachable after {}",
                script.display()
            ))
        }
    });
    if let Err(message) = outcome {
        panic!(
            "the redis tests need a server: {message} (set QUIVER_TEST_REDIS_URL to use another)"
        );
    }
}

/// Removes every key of its namespace when dropped, so reruns never meet old keys.
pub struct NamespaceGuard {
    pub namespace: String,
}

impl NamespaceGuard {
    pub fn new() -> NamespaceGuard {
        NamespaceGuard {
            namespace: format!("test-{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

/// Every key of `namespace`, through a plain synchronous connection.
pub fn namespace_keys(namespace: &str) -> Vec<String> {
    let client = redis::Client::open(test_url()).expect("test url");
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect to the test redis");
    let mut found = Vec::new();
    let registry = keys::registry_key(namespace);
    let exists: bool = redis::cmd("EXISTS")
        .arg(&registry)
        .query(&mut con)
        .expect("EXISTS");
    if exists {
        found.push(registry);
    }
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(keys::entity_key_pattern(namespace))
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)
            .expect("SCAN");
        found.extend(batch);
        cursor = next;
        if cursor == 0 {
            return found;
        }
    }
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let namespace = self.namespace.clone();
        // On a plain thread: Drop may run inside the test's runtime.
        let cleanup = std::thread::spawn(move || {
            let found = namespace_keys(&namespace);
            if found.is_empty() {
                return;
            }
            let client = redis::Client::open(test_url()).expect("test url");
            let mut con = client.get_connection().expect("connect");
            for chunk in found.chunks(1000) {
                let _: u64 = redis::cmd("DEL").arg(chunk).query(&mut con).expect("DEL");
            }
        });
        let _ = cleanup.join();
    }
}

pub fn options(namespace: &str) -> RedisOptions {
    RedisOptions {
        address: test_url(),
        db: 0,
        password: None,
        namespace: namespace.to_string(),
    }
}

pub async fn store_in(namespace: &str) -> RedisOnlineStore {
    ensure_server();
    RedisOnlineStore::connect(options(namespace))
        .await
        .expect("connect to the test redis")
}

/// A fresh store in its own namespace, emptied when the guard drops.
pub async fn fresh_store() -> (NamespaceGuard, SharedOnlineStore) {
    let guard = NamespaceGuard::new();
    let store = store_in(&guard.namespace).await;
    (guard, Arc::new(store))
}

/// How long the client may pause inside one burst of bytes.
const BURST_GAP: Duration = Duration::from_millis(20);

/// A TCP proxy in front of the test server that counts round trips: it parses the RESP
/// messages both ways, and client bytes sent while no command is waiting for its reply
/// start a new round trip (so a pipeline the kernel splits in several segments is still
/// one). Every byte the client sends is kept, so a test can inspect the commands.
pub struct Proxy {
    pub port: u16,
    counters: Arc<Mutex<Counters>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

#[derive(Default)]
struct Counters {
    round_trips: u64,
    commands: u64,
    replies: u64,
    client_bytes: Vec<u8>,
    /// Not yet parsed tails of each direction.
    up_tail: Vec<u8>,
    down_tail: Vec<u8>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        ensure_server();
        let proxy = Proxy {
            port: 0,
            counters: Arc::new(Mutex::new(Counters::default())),
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.listen(0).await
    }

    async fn listen(mut self, port: u16) -> Proxy {
        // The listener of a `cut` is dropped when its aborted task is next polled, which
        // may be a moment after `restore` wants the port back.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let listener: TcpListener = loop {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.set_reuseaddr(true).expect("SO_REUSEADDR");
            match socket.bind(SocketAddr::from(([127, 0, 0, 1], port))) {
                Ok(()) => break socket.listen(64).expect("listen"),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("bind the proxy on port {port}: {e}"),
            }
        };
        self.port = listener.local_addr().expect("local addr").port();
        let upstream = test_host_port();
        let (counters, tasks) = (self.counters.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let up_counters = counters.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0_u8; 1 << 16];
                    loop {
                        let n = match client_rx.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        // Gather the whole burst before forwarding any of it, so the
                        // server cannot answer half a pipeline the kernel split: a
                        // client that waits for a reply is silent far longer than this.
                        let mut burst = buf[..n].to_vec();
                        loop {
                            match tokio::time::timeout(BURST_GAP, client_rx.read(&mut buf)).await {
                                Ok(Ok(0)) | Ok(Err(_)) => return,
                                Ok(Ok(n)) => burst.extend_from_slice(&buf[..n]),
                                Err(_) => break,
                            }
                        }
                        {
                            let mut c = up_counters.lock().expect("lock");
                            if c.commands == c.replies && c.up_tail.is_empty() {
                                c.round_trips += 1;
                            }
                            c.client_bytes.extend_from_slice(&burst);
                            c.up_tail.extend_from_slice(&burst);
                            let (count, used) = count_messages(&c.up_tail);
                            c.commands += count;
                            c.up_tail.drain(..used);
                        }
                        if server_tx.write_all(&burst).await.is_err() {
                            return;
                        }
                    }
                });
                let down_counters = counters.clone();
                let down = tokio::spawn(async move {
                    let mut buf = vec![0_u8; 1 << 16];
                    loop {
                        let n = match server_rx.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        {
                            let mut c = down_counters.lock().expect("lock");
                            c.down_tail.extend_from_slice(&buf[..n]);
                            let (count, used) = count_messages(&c.down_tail);
                            c.replies += count;
                            c.down_tail.drain(..used);
                        }
                        if client_tx.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut tasks = tasks.lock().expect("lock");
                tasks.push(up);
                tasks.push(down);
            }
        });
        self.tasks.lock().expect("lock").push(accept);
        self
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start counting afresh (call between calls, with nothing in flight).
    pub fn reset(&self) {
        let mut c = self.counters.lock().expect("lock");
        c.round_trips = 0;
        c.client_bytes.clear();
    }

    pub fn round_trips(&self) -> u64 {
        self.counters.lock().expect("lock").round_trips
    }

    /// Commands the client sent since the last reset.
    pub fn commands(&self) -> Vec<Vec<Vec<u8>>> {
        parse_commands(&self.counters.lock().expect("lock").client_bytes)
    }

    /// Stop listening and cut every connection, as a Redis going down does.
    pub fn cut(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
        let mut c = self.counters.lock().expect("lock");
        (c.commands, c.replies) = (0, 0);
        c.up_tail.clear();
        c.down_tail.clear();
    }

    /// Listen again on the same port, as a Redis coming back does.
    pub async fn restore(self) -> Proxy {
        let port = self.port;
        self.cut();
        self.listen(port).await
    }
}

/// The length of the complete RESP message at the start of `bytes`, if there is one.
fn message_len(bytes: &[u8]) -> Option<usize> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&bytes[1..end]).ok()?;
    let after = end + 2;
    match bytes.first()? {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'!' | b'=' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let total = after + n as usize + 2;
            (bytes.len() >= total).then_some(total)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = header.parse().ok()?;
            let items = if matches!(bytes[0], b'%' | b'|') {
                2 * n
            } else {
                n
            };
            let mut at = after;
            for _ in 0..items.max(0) {
                at += message_len(&bytes[at..])?;
            }
            Some(at)
        }
        other => panic!("not RESP: byte {other:#04x}"),
    }
}

/// Complete top-level messages at the start of `bytes`, and the bytes they take.
fn count_messages(bytes: &[u8]) -> (u64, usize) {
    let (mut count, mut at) = (0, 0);
    while at < bytes.len() {
        match message_len(&bytes[at..]) {
            Some(len) => {
                count += 1;
                at += len;
            }
            None => break,
        }
    }
    (count, at)
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

fn line(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let end = bytes[*at..].windows(2).position(|w| w == b"\r\n")? + *at;
    let text = std::str::from_utf8(&bytes[*at + 1..end]).ok()?;
    *at = end + 2;
    text.parse().ok()
}

/// Parse the commands a client sent: `*N\r\n` then N × `$len\r\n<bytes>\r\n`.
pub fn parse_commands(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut commands = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(bytes[at], b'*', "a command starts with `*` at byte {at}");
        let n = line(bytes, &mut at).expect("array length");
        let mut args = Vec::new();
        for _ in 0..n {
            assert_eq!(bytes[at], b'$', "an argument starts with `$`");
            let len = line(bytes, &mut at).expect("bulk length") as usize;
            args.push(bytes[at..at + len].to_vec());
            at += len + 2;
        }
        commands.push(args);
    }
    commands
}
