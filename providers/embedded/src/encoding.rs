//! How an [`OnlineValue`] is laid out in the `online_values` columns, and back.
//!
//! A text type tag (`value_type`) says which column carries the value, so every variant
//! round-trips exactly and a person reading the file with `sqlite3` sees what is stored:
//!
//! | tag         | `value_int`              | `value_real`     | `value_text` |
//! |-------------|--------------------------|------------------|--------------|
//! | `null`      | NULL                     | NULL             | NULL         |
//! | `bool`      | 0 or 1                   | NULL             | NULL         |
//! | `int`       | the value (full i64)     | NULL             | NULL         |
//! | `float`     | the IEEE-754 bits        | the value, for people (NULL for NaN) | NULL |
//! | `string`    | NULL                     | NULL             | the value    |
//! | `timestamp` | microseconds since epoch | NULL             | NULL         |
//!
//! Floats are read back from their bits, not from `value_real`: SQLite stores a NaN as
//! NULL and an integral REAL such as `-0.0` as the integer `0`, so a REAL column alone
//! would turn NaN into NULL and lose the sign of negative zero. With the bits, NaN (its
//! payload included), ±infinity and `-0.0` come back exactly as written.

use quiver_provider_sdk::{OnlineValue, ProviderError};

/// A value as bound to, or read from, the four value columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EncodedValue {
    pub value_type: String,
    pub value_int: Option<i64>,
    pub value_real: Option<f64>,
    pub value_text: Option<String>,
}

impl EncodedValue {
    pub(crate) fn encode(value: &OnlineValue) -> Self {
        let (tag, int, real, text) = match value {
            OnlineValue::Null => ("null", None, None, None),
            OnlineValue::Bool(b) => ("bool", Some(i64::from(*b)), None, None),
            OnlineValue::Int(i) => ("int", Some(*i), None, None),
            OnlineValue::Float(f) => (
                "float",
                Some(f.to_bits() as i64),
                (!f.is_nan()).then_some(*f),
                None,
            ),
            OnlineValue::String(s) => ("string", None, None, Some(s.clone())),
            OnlineValue::Timestamp(us) => ("timestamp", Some(*us), None, None),
        };
        EncodedValue {
            value_type: tag.to_string(),
            value_int: int,
            value_real: real,
            value_text: text,
        }
    }

    /// # Errors
    /// [`ProviderError::Other`] for a row this crate did not write (unknown tag or a
    /// missing column), naming what is wrong.
    pub(crate) fn decode(self) -> Result<OnlineValue, ProviderError> {
        let corrupt = |what: &str| {
            ProviderError::Other(format!(
                "corrupt online value: tag `{}` without {what}",
                self.value_type
            ))
        };
        Ok(match self.value_type.as_str() {
            "null" => OnlineValue::Null,
            "bool" => OnlineValue::Bool(self.value_int.ok_or_else(|| corrupt("value_int"))? != 0),
            "int" => OnlineValue::Int(self.value_int.ok_or_else(|| corrupt("value_int"))?),
            "float" => OnlineValue::Float(f64::from_bits(
                self.value_int.ok_or_else(|| corrupt("value_int"))? as u64,
            )),
            "string" => OnlineValue::String(
                self.value_text
                    .clone()
                    .ok_or_else(|| corrupt("value_text"))?,
            ),
            "timestamp" => {
                OnlineValue::Timestamp(self.value_int.ok_or_else(|| corrupt("value_int"))?)
            }
            other => {
                return Err(ProviderError::Other(format!(
                    "corrupt online value: unknown type tag `{other}`"
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: OnlineValue) -> OnlineValue {
        EncodedValue::encode(&value).decode().unwrap()
    }

    #[test]
    fn every_variant_round_trips_exactly() {
        for value in [
            OnlineValue::Null,
            OnlineValue::Bool(true),
            OnlineValue::Bool(false),
            OnlineValue::Int(i64::MIN),
            OnlineValue::Int(i64::MAX),
            OnlineValue::Float(f64::INFINITY),
            OnlineValue::Float(f64::NEG_INFINITY),
            OnlineValue::Float(f64::MIN_POSITIVE),
            OnlineValue::String(String::new()),
            OnlineValue::String("naïve \0 ✓".into()),
            OnlineValue::Timestamp(i64::MIN),
        ] {
            assert_eq!(round_trip(value.clone()), value);
        }
    }

    #[test]
    fn nan_and_negative_zero_keep_their_bits() {
        let payload_nan = f64::from_bits(0x7ff8_0000_0000_beef);
        for f in [payload_nan, -0.0_f64] {
            match round_trip(OnlineValue::Float(f)) {
                OnlineValue::Float(back) => assert_eq!(back.to_bits(), f.to_bits()),
                other => panic!("expected a float, got {other:?}"),
            }
        }
        assert_eq!(
            EncodedValue::encode(&OnlineValue::Float(f64::NAN)).value_real,
            None
        );
    }

    #[test]
    fn rows_this_crate_did_not_write_are_reported() {
        let mut bad = EncodedValue::encode(&OnlineValue::Int(1));
        bad.value_int = None;
        assert!(bad
            .decode()
            .unwrap_err()
            .to_string()
            .contains("without value_int"));
        let mut bad = EncodedValue::encode(&OnlineValue::Int(1));
        bad.value_type = "decimal".into();
        assert!(bad
            .decode()
            .unwrap_err()
            .to_string()
            .contains("unknown type tag `decimal`"));
    }
}
