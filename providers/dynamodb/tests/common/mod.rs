//! Shared by this crate's tests: the moto emulator (started through
//! `scripts/emulators/dynamodb.sh` once per process when it does not answer) and stores
//! with a table prefix of their own, so tests running in parallel never meet each
//! other's tables. Tables are dropped when the guard is, unless the test failed.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use quiver_provider_dynamodb::{DynamoConfig, DynamoOnlineStore, StaticCredentials};
use quiver_provider_testkit::online::SharedOnlineStore;

pub const ACCESS_KEY_ID: &str = "quiver-test-key";
pub const SECRET: &str = "quiver-test-secret-7f3c91";

/// The emulator the tests use: `QUIVER_DYNAMODB_PORT`, default 19002.
pub fn port() -> u16 {
    match std::env::var("QUIVER_DYNAMODB_PORT") {
        Ok(port) => port
            .parse()
            .unwrap_or_else(|_| panic!("QUIVER_DYNAMODB_PORT={port} is not a port")),
        Err(_) => 19002,
    }
}

/// A second emulator whose signature checks the credential tests turn on:
/// `QUIVER_DYNAMODB_AUTH_PORT`, default 19003.
pub fn auth_port() -> u16 {
    match std::env::var("QUIVER_DYNAMODB_AUTH_PORT") {
        Ok(port) => port
            .parse()
            .unwrap_or_else(|_| panic!("QUIVER_DYNAMODB_AUTH_PORT={port} is not a port")),
        Err(_) => 19003,
    }
}

pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn reachable(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
}

/// Make sure moto answers on `port`, running the emulator script (once per process and
/// port) when it does not.
///
/// # Panics
/// When it still does not: the tests need the emulator, they never skip.
pub fn ensure_emulator(port: u16) {
    static READY: OnceLock<Mutex<HashMap<u16, Result<(), String>>>> = OnceLock::new();
    let mut ready = READY
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let outcome = ready.entry(port).or_insert_with(|| {
        if reachable(port) {
            return Ok(());
        }
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/emulators/dynamodb.sh");
        eprintln!(
            "nothing answers on 127.0.0.1:{port}; running {}",
            script.display()
        );
        let status = Command::new("bash")
            .arg(&script)
            .env("QUIVER_DYNAMODB_PORT", port.to_string())
            .status()
            .map_err(|e| format!("could not run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!("{} failed ({status})", script.display()));
        }
        if reachable(port) {
            Ok(())
        } else {
            Err(format!(
                "127.0.0.1:{port} is still unreachable after {}",
                script.display()
            ))
        }
    });
    if let Err(message) = outcome {
        panic!("the DynamoDB tests need moto: {message}");
    }
}

/// A prefix no other test uses.
pub fn fresh_prefix() -> String {
    format!("t{}_", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

pub fn credentials() -> StaticCredentials {
    StaticCredentials {
        access_key_id: ACCESS_KEY_ID.into(),
        secret_access_key: SECRET.into(),
        session_token: None,
    }
}

pub fn config(port: u16, prefix: &str) -> DynamoConfig {
    let mut config = DynamoConfig::new("us-east-1", Some(&endpoint(port)), credentials());
    config.table_prefix = prefix.to_string();
    config
}

/// Drops every table of its prefix when it goes out of scope (kept when the test fails).
pub struct Cleanup {
    port: u16,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "keeping DynamoDB tables with prefix {} of the failed test",
                self.prefix
            );
            return;
        }
        let (port, prefix) = (self.port, self.prefix.clone());
        // Drop cannot await; a short-lived runtime on its own thread does the cleanup.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async {
                let store = DynamoOnlineStore::new(config(port, &prefix)).expect("store");
                let client = store.client();
                let mut start: Option<String> = None;
                let mut doomed = Vec::new();
                loop {
                    let out = client
                        .list_tables()
                        .set_exclusive_start_table_name(start.clone())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    doomed.extend(
                        out.table_names()
                            .iter()
                            .filter(|n| n.starts_with(&prefix))
                            .cloned(),
                    );
                    start = out.last_evaluated_table_name().map(str::to_string);
                    if start.is_none() {
                        break;
                    }
                }
                for table in doomed {
                    client
                        .delete_table()
                        .table_name(table)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("could not drop the tables with prefix {}: {e}", self.prefix);
        }
    }
}

/// A store on the emulator with a fresh prefix, and the guard that drops its tables.
pub fn fresh() -> (Cleanup, Arc<DynamoOnlineStore>) {
    let port = port();
    ensure_emulator(port);
    let prefix = fresh_prefix();
    let store = DynamoOnlineStore::new(config(port, &prefix)).expect("a valid configuration");
    (Cleanup { port, prefix }, Arc::new(store))
}

pub async fn fresh_store() -> (Cleanup, SharedOnlineStore) {
    let (guard, store) = fresh();
    (guard, store)
}
