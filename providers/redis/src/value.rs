//! How one stored value is laid out in its hash field: a 16-byte header the Lua scripts
//! compare, then a one-byte type tag and the payload.
//!
//! ```text
//! bytes 0..8    generation of the table incarnation, u64 big-endian
//! bytes 8..16   event time, microseconds since the epoch, i64 big-endian with the sign
//!               bit flipped (so unsigned byte order is numeric order, negatives included)
//! byte  16      tag: b'n' null, b'b' bool, b'i' int, b'f' float, b's' string, b't' timestamp
//! bytes 17..    payload: bool 1 byte (0/1); int, timestamp 8 bytes big-endian; float the
//!               8 IEEE-754 bytes big-endian (NaN payloads, ±inf and -0.0 exact); string
//!               its UTF-8 bytes (any length, no terminator)
//! ```
//!
//! Because the header is `(generation, event time)` in big-endian, "is this write newer"
//! is a plain byte-wise comparison of the first 16 bytes, exact for every i64 event time
//! (Lua numbers are doubles and would round above 2^53) and independent of the server's
//! locale (Lua's string `<` uses `strcoll`).

use chrono::{DateTime, Utc};
use quiver_provider_sdk::OnlineValue;

/// Length of the compared header.
pub(crate) const HEADER_LEN: usize = 16;

/// A stored value that this crate cannot have written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("corrupt online value: {0}")]
pub struct CorruptValue(pub String);

/// One decoded field.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue {
    pub generation: u64,
    pub event_time_us: i64,
    pub value: OnlineValue,
}

const SIGN: u64 = 1 << 63;

fn event_time_bytes(us: i64) -> [u8; 8] {
    ((us as u64) ^ SIGN).to_be_bytes()
}

/// Encode a value written at `event_time` into table incarnation `generation`.
pub fn encode(generation: u64, event_time: DateTime<Utc>, value: &OnlineValue) -> Vec<u8> {
    let payload_len = match value {
        OnlineValue::String(s) => s.len(),
        _ => 8,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + 1 + payload_len);
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&event_time_bytes(event_time.timestamp_micros()));
    match value {
        OnlineValue::Null => out.push(b'n'),
        OnlineValue::Bool(b) => {
            out.push(b'b');
            out.push(u8::from(*b));
        }
        OnlineValue::Int(i) => {
            out.push(b'i');
            out.extend_from_slice(&i.to_be_bytes());
        }
        OnlineValue::Float(f) => {
            out.push(b'f');
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        OnlineValue::String(s) => {
            out.push(b's');
            out.extend_from_slice(s.as_bytes());
        }
        OnlineValue::Timestamp(us) => {
            out.push(b't');
            out.extend_from_slice(&us.to_be_bytes());
        }
    }
    out
}

/// The 8-byte big-endian form of a generation, as the sweep script compares it.
pub(crate) fn generation_bytes(generation: u64) -> [u8; 8] {
    generation.to_be_bytes()
}

fn eight(bytes: &[u8], what: &str) -> Result<[u8; 8], CorruptValue> {
    bytes
        .try_into()
        .map_err(|_| CorruptValue(format!("{what} needs 8 bytes, has {}", bytes.len())))
}

/// Decode a stored field.
///
/// # Errors
/// [`CorruptValue`] for bytes [`encode`] cannot have produced.
pub fn decode(bytes: &[u8]) -> Result<StoredValue, CorruptValue> {
    if bytes.len() <= HEADER_LEN {
        return Err(CorruptValue(format!(
            "{} bytes, shorter than the header and tag",
            bytes.len()
        )));
    }
    let generation = u64::from_be_bytes(eight(&bytes[0..8], "generation")?);
    let event_time_us = (u64::from_be_bytes(eight(&bytes[8..16], "event time")?) ^ SIGN) as i64;
    let payload = &bytes[HEADER_LEN + 1..];
    let value = match bytes[HEADER_LEN] {
        b'n' if payload.is_empty() => OnlineValue::Null,
        b'b' if payload == [0] => OnlineValue::Bool(false),
        b'b' if payload == [1] => OnlineValue::Bool(true),
        b'i' => OnlineValue::Int(i64::from_be_bytes(eight(payload, "int")?)),
        b'f' => OnlineValue::Float(f64::from_bits(u64::from_be_bytes(eight(payload, "float")?))),
        b't' => OnlineValue::Timestamp(i64::from_be_bytes(eight(payload, "timestamp")?)),
        b's' => OnlineValue::String(
            String::from_utf8(payload.to_vec())
                .map_err(|_| CorruptValue("string is not UTF-8".into()))?,
        ),
        tag => {
            return Err(CorruptValue(format!(
                "tag {tag:#04x} with {} payload bytes",
                payload.len()
            )))
        }
    };
    Ok(StoredValue {
        generation,
        event_time_us,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(us: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(us).unwrap()
    }

    fn same(a: &OnlineValue, b: &OnlineValue) -> bool {
        match (a, b) {
            (OnlineValue::Float(x), OnlineValue::Float(y)) => x.to_bits() == y.to_bits(),
            _ => a == b,
        }
    }

    #[test]
    fn every_value_round_trips_exactly() {
        let values = [
            OnlineValue::Null,
            OnlineValue::Bool(false),
            OnlineValue::Bool(true),
            OnlineValue::Int(i64::MIN),
            OnlineValue::Int(i64::MAX),
            OnlineValue::Int(0),
            OnlineValue::Float(-0.0),
            OnlineValue::Float(0.0),
            OnlineValue::Float(f64::NAN),
            OnlineValue::Float(f64::from_bits(0x7ff8_0000_dead_beef)),
            OnlineValue::Float(f64::INFINITY),
            OnlineValue::Float(f64::NEG_INFINITY),
            OnlineValue::Float(f64::MIN_POSITIVE),
            OnlineValue::String(String::new()),
            OnlineValue::String("naïve ✓ \n\0 {x}:y".into()),
            OnlineValue::Timestamp(i64::MIN),
            OnlineValue::Timestamp(i64::MAX),
        ];
        let min = DateTime::<Utc>::MIN_UTC.timestamp_micros();
        let max = DateTime::<Utc>::MAX_UTC.timestamp_micros();
        for value in &values {
            for (generation, t) in [(0, 0), (1, -1), (u64::MAX, min), (7, max)] {
                let decoded = decode(&encode(generation, micros(t), value)).unwrap();
                assert_eq!(decoded.generation, generation);
                assert_eq!(decoded.event_time_us, t);
                assert!(same(&decoded.value, value), "{value:?} → {decoded:?}");
            }
        }
    }

    #[test]
    fn header_byte_order_is_generation_then_event_time_order() {
        let times = [
            DateTime::<Utc>::MIN_UTC.timestamp_micros(),
            -1_000_000,
            -1,
            0,
            1,
            1_700_000_000_000_000,
            DateTime::<Utc>::MAX_UTC.timestamp_micros(),
        ];
        let mut headers = Vec::new();
        for generation in [1_u64, 2, 256, u64::MAX] {
            for t in times {
                let bytes = encode(generation, micros(t), &OnlineValue::Null);
                headers.push(bytes[..HEADER_LEN].to_vec());
            }
        }
        let mut sorted = headers.clone();
        sorted.sort();
        assert_eq!(
            headers, sorted,
            "byte order must equal (generation, time) order"
        );
    }

    #[test]
    fn corrupt_bytes_are_reported_not_guessed() {
        let good = encode(1, micros(5), &OnlineValue::Int(3));
        assert!(decode(&good[..HEADER_LEN]).is_err(), "no tag");
        assert!(decode(&good[..good.len() - 1]).is_err(), "short int");
        let mut bad_tag = good.clone();
        bad_tag[HEADER_LEN] = b'x';
        assert!(decode(&bad_tag).is_err());
        let mut bad_utf8 = encode(1, micros(5), &OnlineValue::String("a".into()));
        bad_utf8.push(0xff);
        assert!(decode(&bad_utf8).is_err());
        let mut bad_bool = encode(1, micros(5), &OnlineValue::Bool(true));
        bad_bool[HEADER_LEN + 1] = 2;
        assert!(decode(&bad_bool).is_err());
    }
}
