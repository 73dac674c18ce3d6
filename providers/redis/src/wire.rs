//! The read path's own Redis client: pooled TCP connections speaking RESP2, a request
//! encoder and a plain byte scanner for the replies.
//!
//! Why not the `redis` crate here (it stays for writes, scripts and administration): a
//! 100-entity × 50-feature read is 10 000 bulk strings, and its `combine`-based parser
//! spent ~135 ns on each, 45% of the server's time (BENCHMARKS.md); it also hands every
//! value over as its own `Vec`. Its multiplexed connection adds two task hand-offs (to
//! the driver task and back) to every request. Here the request's own task writes the
//! pipeline and scans the answer in place: replies are [`Frame`]s pointing into one
//! buffer, and nothing is copied until a value is decoded.
//!
//! Connections are checked out of a small pool, one per request in flight, and returned
//! only after a complete, well-formed exchange; any error or timeout drops the
//! connection (it may hold half an answer). Reads are idempotent, so a request that
//! fails on a pooled connection because the server closed it (a Redis restart) is tried
//! once more on a fresh connection, and the rest of the idle pool is dropped with it.

use std::ops::Range;
use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::StoreError;
use crate::store::{CONNECT_TIMEOUT, ROUND_TRIP_TIMEOUT};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 64;

/// Most connections open at once (one per read in flight): past it, reads wait for a
/// connection (within their [`ROUND_TRIP_TIMEOUT`]) instead of opening more, so a burst
/// of requests cannot exhaust Redis's `maxclients` or this process's file descriptors.
pub(crate) const MAX_CONNECTIONS: usize = 256;

/// The longest bulk string Redis sends (its `proto-max-bulk-len` default, 512 MB);
/// a longer length is not Redis speaking.
const MAX_BULK: i64 = 512 * 1024 * 1024;

/// The deepest nesting of arrays the scanner follows.
const MAX_DEPTH: usize = 16;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// Answer buffers larger than this are not kept for reuse, so one huge read does not
/// pin memory.
const KEEP_BUFFER: usize = 1024 * 1024;

/// Where and as whom to connect.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// One element of a reply, in pre-order: an [`Frame::Array`] is followed by its items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A bulk string: its bytes in [`Replies::bytes`].
    Bulk(Range<usize>),
    /// A nil bulk string or nil array.
    Nil,
    Int(i64),
    /// A simple string (`+OK`): its bytes.
    Simple(Range<usize>),
    /// An error reply (`-ERR …`): its text.
    Error(Range<usize>),
    /// An array of this many items, which follow (each with its own items).
    Array(usize),
}

/// The answers of one pipeline: every frame, and where each command's answer starts.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    buf: Vec<u8>,
    frames: Vec<Frame>,
    starts: Vec<usize>,
}

impl Replies {
    /// How many commands were answered.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// The frames of command `i`'s answer (its first frame and everything after it).
    pub fn answer(&self, i: usize) -> &[Frame] {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.frames.len());
        &self.frames[self.starts[i]..end]
    }

    /// The bytes of a [`Frame::Bulk`], [`Frame::Simple`] or [`Frame::Error`].
    pub fn bytes(&self, range: &Range<usize>) -> &[u8] {
        &self.buf[range.clone()]
    }
}

/// Why a reply could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed RESP reply at byte {at}: {what}")]
pub(crate) struct ProtocolError {
    pub at: usize,
    pub what: &'static str,
}

/// A pipeline being written: RESP arrays of bulk strings, in one buffer.
#[derive(Debug, Default)]
pub(crate) struct Pipeline {
    out: Vec<u8>,
    commands: usize,
}

impl Pipeline {
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Append one command of `args` (the command name first).
    pub fn command(&mut self, args: &[&[u8]]) {
        self.header(b'*', args.len());
        for arg in args {
            self.header(b'$', arg.len());
            self.out.extend_from_slice(arg);
            self.out.extend_from_slice(b"\r\n");
        }
        self.commands += 1;
    }

    fn header(&mut self, kind: u8, n: usize) {
        self.out.push(kind);
        let mut digits = [0_u8; 20];
        let mut at = digits.len();
        let mut n = n;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&digits[at..]);
        self.out.extend_from_slice(b"\r\n");
    }

    pub fn commands(&self) -> usize {
        self.commands
    }
}

/// Scan one complete reply starting at `at`, appending its frames. `Ok(None)` when
/// `buf` ends before the reply does (the frames appended so far are removed).
pub(crate) fn scan(
    buf: &[u8],
    at: usize,
    frames: &mut Vec<Frame>,
) -> Result<Option<usize>, ProtocolError> {
    let mark = frames.len();
    let result = scan_inner(buf, at, frames);
    if !matches!(result, Ok(Some(_))) {
        frames.truncate(mark);
    }
    result
}

fn scan_inner(
    buf: &[u8],
    mut at: usize,
    frames: &mut Vec<Frame>,
) -> Result<Option<usize>, ProtocolError> {
    // Items still to scan in each enclosing array; a reply ends when none are left. A
    // fixed stack: the commands of this crate answer arrays at most two deep.
    let mut pending = [0_usize; MAX_DEPTH];
    let mut depth = 0;
    loop {
        let Some(line_end) = line_end(buf, at + 1)? else {
            return Ok(None);
        };
        let kind = buf[at];
        let line = at + 1..line_end;
        let next = line_end + 2;
        match kind {
            b'$' => match integer(&buf[line.clone()], line.start)? {
                -1 => {
                    frames.push(Frame::Nil);
                    at = next;
                }
                n if (0..=MAX_BULK).contains(&n) => {
                    let start = next;
                    let end = start + n as usize;
                    if buf.len() < end + 2 {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(ProtocolError {
                            at: end,
                            what: "bulk string not followed by CRLF",
                        });
                    }
                    frames.push(Frame::Bulk(start..end));
                    at = end + 2;
                }
                _ => {
                    return Err(ProtocolError {
                        at: line.start,
                        what: "bulk string length out of range",
                    })
                }
            },
            b'*' => match integer(&buf[line.clone()], line.start)? {
                -1 => {
                    frames.push(Frame::Nil);
                    at = next;
                }
                n if n >= 0 => {
                    frames.push(Frame::Array(n as usize));
                    at = next;
                    if n > 0 {
                        if depth == MAX_DEPTH {
                            return Err(ProtocolError {
                                at: line.start,
                                what: "arrays nested too deep",
                            });
                        }
                        pending[depth] = n as usize;
                        depth += 1;
                        continue;
                    }
                }
                _ => {
                    return Err(ProtocolError {
                        at: line.start,
                        what: "negative array length",
                    })
                }
            },
            b':' => {
                frames.push(Frame::Int(integer(&buf[line.clone()], line.start)?));
                at = next;
            }
            b'+' => {
                frames.push(Frame::Simple(line));
                at = next;
            }
            b'-' => {
                frames.push(Frame::Error(line));
                at = next;
            }
            _ => {
                return Err(ProtocolError {
                    at,
                    what: "unknown reply type (this client speaks RESP2)",
                })
            }
        }
        // One item done: close every array it completes.
        loop {
            if depth == 0 {
                return Ok(Some(at));
            }
            pending[depth - 1] -= 1;
            if pending[depth - 1] > 0 {
                break;
            }
            depth -= 1;
        }
    }
}

/// The position of the `\r` of the CRLF ending the line that starts at `from`;
/// `None` when `buf` ends first.
fn line_end(buf: &[u8], from: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(rest) = buf.get(from..) else {
        return Ok(None);
    };
    let Some(cr) = rest.iter().position(|&b| b == b'\r') else {
        return Ok(None);
    };
    match buf.get(from + cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(from + cr)),
        Some(_) => Err(ProtocolError {
            at: from + cr,
            what: "CR not followed by LF",
        }),
    }
}

fn integer(text: &[u8], at: usize) -> Result<i64, ProtocolError> {
    let bad = ProtocolError {
        at,
        what: "not an integer",
    };
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(bad);
    }
    let mut value: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(bad);
        }
        value = value * 10 + i64::from(d - b'0');
    }
    Ok(if negative { -value } else { value })
}

/// An open connection.
struct Connection {
    stream: TcpStream,
}

/// The pool of read connections to one Redis.
pub(crate) struct ReadPool {
    endpoint: Endpoint,
    /// `host:port db N`, for messages.
    target: String,
    idle: Mutex<Vec<Connection>>,
    /// Buffers of answers already used ([`ReadPool::recycle`]): a 100 × 50 answer is
    /// ~300 KB, and allocating it afresh cost page faults and copies as it grew.
    spare: Mutex<Vec<(Vec<u8>, Vec<Frame>)>>,
    /// One permit per open connection in use (see [`MAX_CONNECTIONS`]).
    in_use: tokio::sync::Semaphore,
}

impl ReadPool {
    pub fn new(endpoint: Endpoint, target: String) -> ReadPool {
        ReadPool {
            endpoint,
            target,
            idle: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
            in_use: tokio::sync::Semaphore::new(MAX_CONNECTIONS),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send `pipeline` and read its answers, within [`ROUND_TRIP_TIMEOUT`] (connecting
    /// included).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the connection fails, [`StoreError::Timeout`] past the
    /// bound, [`StoreError::Corrupt`] for bytes that are not RESP. Error replies are
    /// answers: the caller reads them in [`Replies`].
    pub async fn query(
        &self,
        what: &'static str,
        pipeline: &Pipeline,
    ) -> Result<Replies, StoreError> {
        match tokio::time::timeout(ROUND_TRIP_TIMEOUT, self.query_once(what, pipeline)).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Timeout {
                target: self.target.clone(),
                what,
                limit: ROUND_TRIP_TIMEOUT,
            }),
        }
    }

    async fn query_once(
        &self,
        what: &'static str,
        pipeline: &Pipeline,
    ) -> Result<Replies, StoreError> {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.in_use.acquire().await;
        let pooled = self.idle().pop();
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect(what).await?,
        };
        match exchange(&mut conn, pipeline, self.buffers()).await {
            Ok(replies) => {
                self.give_back(conn);
                Ok(replies)
            }
            Err(Failure::Io(_)) if reused => {
                // Most likely the server closed idle connections (a restart): so are the
                // other idle ones. Reads are idempotent; try once on a fresh connection.
                self.idle().clear();
                let mut conn = self.connect(what).await?;
                match exchange(&mut conn, pipeline, self.buffers()).await {
                    Ok(replies) => {
                        self.give_back(conn);
                        Ok(replies)
                    }
                    Err(failure) => Err(self.failed(what, failure)),
                }
            }
            Err(failure) => Err(self.failed(what, failure)),
        }
    }

    /// Keep the buffers of answers the caller is done with, for the next query.
    pub fn recycle(&self, replies: Replies) {
        let Replies {
            mut buf,
            mut frames,
            ..
        } = replies;
        if buf.capacity() > KEEP_BUFFER
            || frames.capacity() * std::mem::size_of::<Frame>() > KEEP_BUFFER
        {
            return;
        }
        buf.clear();
        frames.clear();
        let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < MAX_IDLE {
            spare.push((buf, frames));
        }
    }

    fn buffers(&self) -> (Vec<u8>, Vec<Frame>) {
        self.spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    fn failed(&self, what: &'static str, failure: Failure) -> StoreError {
        match failure {
            Failure::Io(source) => StoreError::Io {
                target: self.target.clone(),
                what,
                source,
            },
            Failure::Protocol(e) => StoreError::Corrupt {
                target: self.target.clone(),
                what: format!("{what}: {e}"),
            },
        }
    }

    /// Open a connection: TCP within [`CONNECT_TIMEOUT`], then `AUTH` and `SELECT` as
    /// configured, in one round trip.
    async fn connect(&self, what: &'static str) -> Result<Connection, StoreError> {
        let endpoint = &self.endpoint;
        let stream = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((endpoint.host.as_str(), endpoint.port)),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => {
                return Err(StoreError::Io {
                    target: self.target.clone(),
                    what,
                    source,
                })
            }
            Err(_) => {
                return Err(StoreError::Timeout {
                    target: self.target.clone(),
                    what,
                    limit: CONNECT_TIMEOUT,
                })
            }
        };
        // Requests are single small writes followed by a read: no batching delay.
        stream.set_nodelay(true).map_err(|source| StoreError::Io {
            target: self.target.clone(),
            what,
            source,
        })?;
        let mut conn = Connection { stream };
        let mut setup = Pipeline::new();
        if let Some(password) = &endpoint.password {
            match &endpoint.username {
                Some(user) => setup.command(&[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => setup.command(&[b"AUTH", password.as_bytes()]),
            }
        }
        if endpoint.db != 0 {
            let db = endpoint.db.to_string();
            setup.command(&[b"SELECT", db.as_bytes()]);
        }
        if setup.commands() > 0 {
            let replies = exchange(&mut conn, &setup, Default::default())
                .await
                .map_err(|failure| self.failed(what, failure))?;
            for i in 0..replies.len() {
                if let [Frame::Error(text)] = replies.answer(i) {
                    let message = String::from_utf8_lossy(replies.bytes(text)).into_owned();
                    let target = self.target.clone();
                    // Whatever AUTH answers short of OK (a wrong password, or none
                    // configured on the server) is a credentials problem.
                    return Err(if i == 0 && endpoint.password.is_some() {
                        StoreError::AuthRefused { target, message }
                    } else {
                        StoreError::Reply {
                            target,
                            what: "selecting the database",
                            message,
                        }
                    });
                }
            }
        }
        Ok(conn)
    }
}

enum Failure {
    Io(std::io::Error),
    Protocol(ProtocolError),
}

/// Write the pipeline and read one complete answer per command into `buffers` (empty).
async fn exchange(
    conn: &mut Connection,
    pipeline: &Pipeline,
    buffers: (Vec<u8>, Vec<Frame>),
) -> Result<Replies, Failure> {
    conn.stream
        .write_all(&pipeline.out)
        .await
        .map_err(Failure::Io)?;
    let (mut buf, mut frames) = buffers;
    let mut starts = Vec::with_capacity(pipeline.commands);
    let mut at = 0;
    while starts.len() < pipeline.commands {
        let mark = frames.len();
        match scan(&buf, at, &mut frames).map_err(Failure::Protocol)? {
            Some(next) => {
                starts.push(mark);
                at = next;
            }
            None => {
                buf.reserve(READ_CHUNK);
                let read = conn.stream.read_buf(&mut buf).await.map_err(Failure::Io)?;
                if read == 0 {
                    return Err(Failure::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    )));
                }
            }
        }
    }
    if at != buf.len() {
        // Bytes nobody asked for: the connection is out of step; do not reuse it.
        return Err(Failure::Protocol(ProtocolError {
            at,
            what: "more bytes than answers",
        }));
    }
    Ok(Replies {
        buf,
        frames,
        starts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(buf: &[u8]) -> Result<Vec<Frame>, ProtocolError> {
        let mut frames = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            match scan(buf, at, &mut frames)? {
                Some(next) => at = next,
                None => panic!("incomplete at {at}"),
            }
        }
        Ok(frames)
    }

    #[test]
    fn pipelines_encode_as_resp_arrays() {
        let mut p = Pipeline::new();
        p.command(&[b"HMGET", b"k", b""]);
        p.command(&[b"GET", b"a\r\nb"]);
        assert_eq!(
            p.out,
            b"*3\r\n$5\r\nHMGET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n"
        );
        assert_eq!(p.commands(), 2);
    }

    #[test]
    fn every_reply_type_scans() {
        let buf = b"*4\r\n$3\r\nabc\r\n$-1\r\n$0\r\n\r\n*2\r\n:-7\r\n*0\r\n+OK\r\n-ERR no\r\n*-1\r\n:12\r\n";
        let frames = scan_all(buf).unwrap();
        assert_eq!(
            frames,
            vec![
                Frame::Array(4),
                Frame::Bulk(8..11),
                Frame::Nil,
                Frame::Bulk(22..22),
                Frame::Array(2),
                Frame::Int(-7),
                Frame::Array(0),
                Frame::Simple(38..40),
                Frame::Error(43..49),
                Frame::Nil,
                Frame::Int(12),
            ]
        );
    }

    #[test]
    fn binary_values_may_hold_crlf() {
        let buf = b"$4\r\n\r\n\r\n\r\n";
        assert_eq!(scan_all(buf).unwrap(), vec![Frame::Bulk(4..8)]);
    }

    #[test]
    fn every_truncation_is_incomplete_not_wrong() {
        let buf = b"*3\r\n$3\r\nabc\r\n*2\r\n$-1\r\n:5\r\n$2\r\nxy\r\n";
        for cut in 0..buf.len() {
            let mut frames = vec![Frame::Int(99)];
            assert_eq!(scan(&buf[..cut], 0, &mut frames), Ok(None), "cut at {cut}");
            assert_eq!(frames, vec![Frame::Int(99)], "frames restored at {cut}");
        }
        let mut frames = Vec::new();
        assert_eq!(scan(buf, 0, &mut frames), Ok(Some(buf.len())));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = b"*1\r\n".repeat(MAX_DEPTH);
        deep.extend_from_slice(b":1\r\n");
        assert_eq!(scan_all(&deep).unwrap().len(), MAX_DEPTH + 1);
        let mut deeper = b"*1\r\n".repeat(MAX_DEPTH + 1);
        deeper.extend_from_slice(b":1\r\n");
        assert!(scan(&deeper, 0, &mut Vec::new()).is_err());
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for bad in [
            &b"?x\r\n"[..],
            b"$abc\r\n",
            b"$-2\r\n",
            b"$536870913\r\n",
            b":1\rx",
            b"*-5\r\n",
            b"$3\r\nabcXY",
            b":1x\r\n",
            b":\r\n",
            b"%2\r\n",
            b":1234567890123456789\r\n",
        ] {
            let mut frames = Vec::new();
            assert!(
                scan(bad, 0, &mut frames).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
