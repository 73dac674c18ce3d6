//! The files provider on S3: the whole offline conformance suite against a local
//! S3-compatible server (moto, started by `scripts/emulators/s3.sh` when its port is
//! closed), plus what is specific to S3 roots: a missing bucket, refused credentials, an
//! endpoint that is down, configuration through the factory, and secrets kept out of
//! Debug output and errors.
//!
//! Ports: `QUIVER_S3_PORT` (default 19000) for the suite; `QUIVER_S3_AUTH_PORT` (default
//! 19001) for a second server whose signature checking the credentials test turns on,
//! which would refuse the suite's made-up keys if it were the same server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use async_trait::async_trait;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use quiver_provider_files::{FilesFactory, FilesOfflineStore, RemoteOptions};
use quiver_provider_sdk::{
    FileFormat, OfflineStore, OutputRef, Provider, ProviderError, ProviderFactory, ProviderHandle,
    TableRef, Transformation,
};
use quiver_provider_testkit::offline::{batch, int_values, ints, read_all, OfflineHarness};

/// The made-up keys the suite's server accepts (moto checks nothing by default); the
/// secret is distinctive so a leak is easy to spot.
const ACCESS_KEY_ID: &str = "quiver-test-key";
const SECRET: &str = "quiver-s3-secret-8c1f2b";
const REGION: &str = "us-east-1";

fn port(variable: &str, default: u16) -> u16 {
    match std::env::var(variable) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{variable}=`{value}` is not a port number")),
        Err(_) => default,
    }
}

fn suite_port() -> u16 {
    port("QUIVER_S3_PORT", 19000)
}

fn auth_port() -> u16 {
    port("QUIVER_S3_AUTH_PORT", 19001)
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

/// Make sure an S3 server answers on `port`, starting one through the project script
/// when the port is closed; panics (never skips) when that fails.
fn ensure_server(port: u16) {
    // One start at a time: tests run in parallel and would otherwise race to start two
    // servers on one port.
    static STARTING: Mutex<()> = Mutex::new(());
    let _guard = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if listening(port) {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/emulators/s3.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .env("QUIVER_S3_PORT", port.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success() && listening(port),
        "no S3 server on 127.0.0.1:{port} and {} could not start one: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// One HTTP/1.1 request over a plain TCP connection, for what object_store does not do
/// (creating buckets, moto's IAM and admin calls); returns the status and the body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path} on 127.0.0.1:{port}: {e}"));
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("{method} {path} on 127.0.0.1:{port}: {e}"));
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A bucket name no other test uses.
fn fresh_bucket() -> String {
    format!("quiver-{}", uuid::Uuid::new_v4().simple())
}

/// Create `bucket` with an unsigned PUT (`headers` add a made-up signature where moto
/// needs one to route the request).
fn create_bucket(port: u16, bucket: &str, headers: &[(&str, &str)]) {
    let (status, body) = http(port, "PUT", &format!("/{bucket}"), headers, "");
    assert_eq!(status, 200, "create bucket {bucket}: {body}");
}

fn options(port: u16, access_key_id: &str, secret: &str) -> RemoteOptions {
    RemoteOptions {
        region: Some(REGION.into()),
        endpoint: Some(endpoint(port)),
        access_key_id: Some(access_key_id.into()),
        secret_access_key: Some(secret.into()),
    }
}

/// object_store straight on the bucket, to put test files where the provider reads them.
fn raw_store(port: u16, bucket: &str, access_key_id: &str, secret: &str) -> Arc<dyn ObjectStore> {
    let store = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(REGION)
        .with_endpoint(endpoint(port))
        .with_allow_http(true)
        .with_access_key_id(access_key_id)
        .with_secret_access_key(secret)
        .build()
        .expect("raw s3 store");
    Arc::new(store)
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), None).expect("writer");
    writer.write(batch).expect("write");
    writer.into_inner().expect("close")
}

/// Each test gets its own bucket; tables are Parquet objects under `data/` in it, written
/// through object_store, and the provider is rooted at `s3://{bucket}/data`.
struct S3Harness {
    bucket: String,
    raw: Arc<dyn ObjectStore>,
    store: Arc<FilesOfflineStore>,
}

impl S3Harness {
    fn new() -> Self {
        let port = suite_port();
        ensure_server(port);
        let bucket = fresh_bucket();
        create_bucket(port, &bucket, &[]);
        let store = FilesOfflineStore::remote(
            &format!("s3://{bucket}/data"),
            &options(port, ACCESS_KEY_ID, SECRET),
        )
        .expect("s3 store");
        S3Harness {
            raw: raw_store(port, &bucket, ACCESS_KEY_ID, SECRET),
            bucket,
            store: Arc::new(store),
        }
    }

    async fn put(&self, path: &str, bytes: Vec<u8>) {
        self.raw
            .put(&ObjectPath::from(path), PutPayload::from(bytes))
            .await
            .unwrap_or_else(|e| panic!("put s3://{}/{path}: {e}", self.bucket));
    }
}

#[async_trait]
impl OfflineHarness for S3Harness {
    async fn load(&self, name: &str, batch: RecordBatch) -> TableRef {
        let file = format!("{name}.parquet");
        self.put(&format!("data/{file}"), parquet_bytes(&batch))
            .await;
        TableRef::File {
            path: file,
            format: FileFormat::Parquet,
            schema: None,
        }
    }

    fn store(&self) -> Arc<dyn OfflineStore> {
        self.store.clone()
    }
}

quiver_provider_testkit::offline_store_suite!(S3Harness::new);

fn parquet_file(path: &str) -> TableRef {
    TableRef::File {
        path: path.into(),
        format: FileFormat::Parquet,
        schema: None,
    }
}

fn assert_no_secret(text: &str, secret: &str) {
    assert!(!text.contains(secret), "the secret leaked into: {text}");
}

#[tokio::test]
async fn outputs_are_published_in_the_bucket_and_read_back() {
    let h = S3Harness::new();
    let users = h
        .load("users", batch(vec![("user_id", ints(&[Some(2), Some(1)]))]))
        .await;
    let transformation = Transformation {
        sql: "SELECT user_id * 10 AS v FROM {{ users }} ORDER BY v".into(),
        inputs: vec![("users".into(), users)],
        output: OutputRef {
            kind: "source".into(),
            name: "scaled".into(),
            variant: "v1".into(),
        },
    };
    assert_eq!(
        h.store.run_transformation(&transformation).await.unwrap(),
        2
    );
    let manifest = h
        .raw
        .get(&ObjectPath::from(
            "data/_quiver/outputs/source/scaled/v1/_manifest.json",
        ))
        .await
        .expect("the manifest is an object in the bucket")
        .bytes()
        .await
        .unwrap();
    let manifest = String::from_utf8_lossy(&manifest).to_string();
    assert!(manifest.contains("\"rows\": 2"), "{manifest}");
    let output = TableRef::Output(transformation.output.clone());
    let rows = read_all(h.store.as_ref(), &output).await;
    assert_eq!(int_values(&rows, "v"), vec![Some(10), Some(20)]);

    let health = h.store.health().await;
    assert!(health.healthy, "{}", health.message);
    assert!(health.message.contains(&h.bucket), "{}", health.message);
}

#[tokio::test]
async fn a_prefix_of_parquet_objects_is_one_table() {
    let h = S3Harness::new();
    h.put(
        "data/events/a.parquet",
        parquet_bytes(&batch(vec![("v", ints(&[Some(1), Some(2)]))])),
    )
    .await;
    h.put(
        "data/events/b.parquet",
        parquet_bytes(&batch(vec![("v", ints(&[Some(3)]))])),
    )
    .await;
    let mut values = int_values(
        &read_all(h.store.as_ref(), &parquet_file("events")).await,
        "v",
    );
    values.sort();
    assert_eq!(values, vec![Some(1), Some(2), Some(3)]);
    // The same object named by its full URL on the root's bucket.
    let url = format!("s3://{}/data/events/b.parquet", h.bucket);
    let rows = read_all(h.store.as_ref(), &parquet_file(&url)).await;
    assert_eq!(int_values(&rows, "v"), vec![Some(3)]);
}

#[tokio::test]
async fn factory_config_reaches_the_bucket() {
    let h = S3Harness::new();
    let table = h
        .load("numbers", batch(vec![("n", ints(&[Some(7)]))]))
        .await;
    let factory = FilesFactory::new(std::env::temp_dir());
    let handle = factory
        .build(&serde_json::json!({
            "type": "files",
            "root": format!("s3://{}/data", h.bucket),
            "region": REGION,
            "endpoint": endpoint(suite_port()),
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET,
        }))
        .await
        .expect("files provider on s3");
    let ProviderHandle::Offline(store) = handle else {
        panic!("the files provider is an offline store");
    };
    let health = store.health().await;
    assert!(health.healthy, "{}", health.message);
    let rows = read_all(store.as_ref(), &table).await;
    assert_eq!(int_values(&rows, "n"), vec![Some(7)]);

    let err = factory
        .build(&serde_json::json!({
            "type": "files",
            "root": format!("s3://{}/data", h.bucket),
            "endpoint": endpoint(suite_port()),
            "access_key_id": ACCESS_KEY_ID,
        }))
        .await
        .err()
        .expect("a key id without a secret is refused");
    assert!(matches!(err, ProviderError::InvalidConfig(_)), "{err}");
    let err = factory
        .build(&serde_json::json!({
            "type": "files",
            "root": format!("s3://{}/data", h.bucket),
            "endpoint": "ftp://127.0.0.1:21",
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET,
        }))
        .await
        .err()
        .expect("an endpoint that is not http(s) is refused");
    assert!(matches!(err, ProviderError::InvalidConfig(_)), "{err}");
    assert_no_secret(&err.to_string(), SECRET);
}

#[tokio::test]
async fn a_missing_bucket_is_not_found_and_named() {
    let port = suite_port();
    ensure_server(port);
    let bucket = fresh_bucket();
    let store = FilesOfflineStore::remote(
        &format!("s3://{bucket}/data"),
        &options(port, ACCESS_KEY_ID, SECRET),
    )
    .unwrap();

    let health = store.health().await;
    assert!(!health.healthy);
    assert!(
        health
            .message
            .contains(&format!("bucket `{bucket}` does not exist"))
            && health.message.contains("NoSuchBucket"),
        "health names the bucket and keeps the server's message: {}",
        health.message
    );
    for err in [
        store.schema(&parquet_file("t.parquet")).await.err(),
        store.read(&parquet_file("t.parquet")).await.err(),
    ] {
        match err {
            Some(ProviderError::NotFound(message)) => {
                assert!(message.contains(&bucket), "{message}");
                assert_no_secret(&message, SECRET);
            }
            other => panic!("a missing bucket must be NotFound, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_endpoint_that_is_down_is_unreachable() {
    // A port nothing listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = FilesOfflineStore::remote(
        "s3://any-bucket/data",
        &options(port, ACCESS_KEY_ID, SECRET),
    )
    .unwrap();
    let started = Instant::now();
    let health = store.health().await;
    assert!(!health.healthy);
    assert!(health.message.contains("unreachable"), "{}", health.message);
    match store.schema(&parquet_file("t.parquet")).await {
        Err(ProviderError::Unreachable(message)) => {
            assert!(message.contains(&port.to_string()), "{message}");
            assert_no_secret(&message, SECRET);
        }
        other => panic!("a server that is down must be Unreachable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "reported after {:?}: retries must be bounded",
        started.elapsed()
    );
}

#[test]
fn debug_output_never_shows_the_secret() {
    let options = options(suite_port(), ACCESS_KEY_ID, SECRET);
    let shown = format!("{options:?}");
    assert_no_secret(&shown, SECRET);
    assert!(shown.contains("***"), "{shown}");
    let store = FilesOfflineStore::remote("s3://some-bucket/data", &options).unwrap();
    let shown = format!("{store:?}");
    assert_no_secret(&shown, SECRET);
    assert!(shown.contains("s3://some-bucket/data"), "{shown}");
}

/// Form-encode `pairs` (application/x-www-form-urlencoded).
fn form(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn xml_value<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find("</").expect("closing tag") + start;
    &xml[start..end]
}

/// A moto IAM user allowed everything on S3, and a bucket, made through moto's
/// unauthenticated allowance; then signatures are checked on every request. Returns the
/// user's key id and secret.
fn user_with_checked_signatures(port: u16, bucket: &str) -> (String, String) {
    // moto routes an unsigned request by the service named in its Authorization header.
    let scope = |service: &str| {
        format!("AWS4-HMAC-SHA256 Credential=setup/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0")
    };
    let iam_auth = scope("iam");
    let iam = [
        ("Authorization", iam_auth.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    // Exactly the four requests below go unchecked.
    let (status, body) = http(
        port,
        "POST",
        "/moto-api/reset-auth",
        &[("Content-Type", "application/json")],
        "4",
    );
    assert_eq!(status, 200, "moto reset-auth: {body}");
    let user = format!("quiver-{}", uuid::Uuid::new_v4().simple());
    let call = |pairs: &[(&str, &str)]| {
        let (status, body) = http(port, "POST", "/", &iam, &form(pairs));
        assert_eq!(status, 200, "IAM {pairs:?}: {body}");
        body
    };
    call(&[
        ("Action", "CreateUser"),
        ("UserName", &user),
        ("Version", "2010-05-08"),
    ]);
    let key = call(&[
        ("Action", "CreateAccessKey"),
        ("UserName", &user),
        ("Version", "2010-05-08"),
    ]);
    call(&[
        ("Action", "PutUserPolicy"),
        ("UserName", &user),
        ("PolicyName", "s3"),
        (
            "PolicyDocument",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
        ),
        ("Version", "2010-05-08"),
    ]);
    let s3_auth = scope("s3");
    create_bucket(port, bucket, &[("Authorization", s3_auth.as_str())]);
    (
        xml_value(&key, "AccessKeyId").to_string(),
        xml_value(&key, "SecretAccessKey").to_string(),
    )
}

/// moto checks signatures only once told to, on its own server (QUIVER_S3_AUTH_PORT).
/// moto 5.2 also miscomputes the signature of requests whose query holds an encoded `/`
/// (listing a prefix), so the accepted-credentials side is shown on single objects only.
#[tokio::test]
async fn wrong_credentials_are_unauthorized() {
    let port = auth_port();
    ensure_server(port);
    let bucket = fresh_bucket();
    let (key_id, secret) = user_with_checked_signatures(port, &bucket);
    let table = parquet_file("numbers.parquet");
    raw_store(port, &bucket, &key_id, &secret)
        .put(
            &ObjectPath::from("numbers.parquet"),
            PutPayload::from(parquet_bytes(&batch(vec![("n", ints(&[Some(1)]))]))),
        )
        .await
        .expect("the user's own keys are accepted");
    let root = format!("s3://{bucket}");
    let good = FilesOfflineStore::remote(&root, &options(port, &key_id, &secret)).unwrap();
    let schema = good.schema(&table).await.expect("right keys read the file");
    assert_eq!(schema.fields().len(), 1);

    let wrong_secret = "wrong-secret-4d9a7e";
    for (case, store) in [
        (
            "wrong secret",
            FilesOfflineStore::remote(&root, &options(port, &key_id, wrong_secret)).unwrap(),
        ),
        (
            "unknown key id",
            FilesOfflineStore::remote(&root, &options(port, "AKIAQUIVERUNKNOWN", wrong_secret))
                .unwrap(),
        ),
    ] {
        match store.schema(&table).await {
            Err(ProviderError::Unauthorized(message)) => {
                assert_no_secret(&message, wrong_secret);
                assert_no_secret(&message, &secret);
            }
            other => panic!("{case}: must be Unauthorized, got {other:?}"),
        }
        let health = store.health().await;
        assert!(!health.healthy, "{case}: {}", health.message);
        assert!(
            health.message.contains("credentials rejected")
                && (health.message.contains("SignatureDoesNotMatch")
                    || health.message.contains("InvalidAccessKeyId")),
            "{case}: health keeps the server's message: {}",
            health.message
        );
        assert_no_secret(&health.message, wrong_secret);
    }
}
