//! How an [`OnlineValue`] and its event time are laid out as DynamoDB attributes, and back.
//!
//! | attribute       | type | meaning                                                   |
//! |-----------------|------|-----------------------------------------------------------|
//! | `entity`        | S    | partition key: the entity, exactly as given               |
//! | `value_type`    | S    | `null`, `bool`, `int`, `float`, `string` or `timestamp`   |
//! | `value`         | BOOL / N / S | the value (absent for `null`)                     |
//! | `event_time_us` | N    | event time, microseconds since the Unix epoch             |
//! | `expires_at`    | N    | epoch seconds after which DynamoDB may delete the item (only in tables with a TTL) |
//!
//! `int` and `timestamp` (microseconds) are exact decimal `N`s: DynamoDB numbers carry 38
//! digits. A `float` is stored as the `N` of its IEEE-754 bits read as an `i64`, because
//! DynamoDB numbers have no NaN, no infinities, no negative zero and stop at 1e126, so
//! only the bits give back exactly what was written (NaN payloads included).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use quiver_provider_sdk::OnlineValue;

/// Partition key of every feature table.
pub(crate) const ENTITY: &str = "entity";
pub(crate) const VALUE_TYPE: &str = "value_type";
pub(crate) const VALUE: &str = "value";
pub(crate) const EVENT_TIME: &str = "event_time_us";
/// The table's TTL attribute, enabled with `UpdateTimeToLive`.
pub(crate) const EXPIRES_AT: &str = "expires_at";

/// Partition key of the registry table: the feature table's DynamoDB name.
pub(crate) const REGISTRY_KEY: &str = "table_name";
pub(crate) const REGISTRY_FEATURE: &str = "feature";
pub(crate) const REGISTRY_VARIANT: &str = "variant";
/// The table's TTL in microseconds; absent when the table has none.
pub(crate) const REGISTRY_TTL: &str = "ttl_us";

/// DynamoDB's limit on a partition key: 1 to 2048 bytes of UTF-8.
pub(crate) const MAX_ENTITY_BYTES: usize = 2048;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Whether `entity` can be a partition key. DynamoDB refuses empty keys and keys over
/// 2048 bytes; such an entity can never have been written.
pub(crate) fn storable_entity(entity: &str) -> bool {
    !entity.is_empty() && entity.len() <= MAX_ENTITY_BYTES
}

/// The key of `entity`'s item.
pub(crate) fn key(entity: &str) -> Item {
    HashMap::from([(ENTITY.to_string(), AttributeValue::S(entity.to_string()))])
}

/// The item for one row; `expires_at` only in tables with a TTL.
pub(crate) fn encode(
    entity: &str,
    value: &OnlineValue,
    event_time_us: i64,
    expires_at: Option<i64>,
) -> Item {
    let (tag, attribute) = match value {
        OnlineValue::Null => ("null", None),
        OnlineValue::Bool(b) => ("bool", Some(AttributeValue::Bool(*b))),
        OnlineValue::Int(i) => ("int", Some(AttributeValue::N(i.to_string()))),
        OnlineValue::Float(f) => (
            "float",
            Some(AttributeValue::N((f.to_bits() as i64).to_string())),
        ),
        OnlineValue::String(s) => ("string", Some(AttributeValue::S(s.clone()))),
        OnlineValue::Timestamp(us) => ("timestamp", Some(AttributeValue::N(us.to_string()))),
    };
    let mut item = key(entity);
    item.insert(VALUE_TYPE.into(), AttributeValue::S(tag.into()));
    if let Some(attribute) = attribute {
        item.insert(VALUE.into(), attribute);
    }
    item.insert(
        EVENT_TIME.into(),
        AttributeValue::N(event_time_us.to_string()),
    );
    if let Some(expires_at) = expires_at {
        item.insert(EXPIRES_AT.into(), AttributeValue::N(expires_at.to_string()));
    }
    item
}

/// A stored item this crate cannot read, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt online item: {0}")]
pub(crate) struct Corrupt(pub String);

/// One decoded item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub entity: String,
    pub value: OnlineValue,
    pub event_time_us: i64,
}

fn string<'a>(item: &'a Item, name: &str) -> Result<&'a str, Corrupt> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        Some(_) => Err(Corrupt(format!("`{name}` is not a string"))),
        None => Err(Corrupt(format!("no `{name}`"))),
    }
}

pub(crate) fn number(item: &Item, name: &str) -> Result<i64, Corrupt> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| Corrupt(format!("`{name}` = {n} is not a 64-bit integer"))),
        Some(_) => Err(Corrupt(format!("`{name}` is not a number"))),
        None => Err(Corrupt(format!("no `{name}`"))),
    }
}

/// Read back an item written by [`encode`].
pub(crate) fn decode(item: &Item) -> Result<Decoded, Corrupt> {
    let entity = string(item, ENTITY)?.to_string();
    let event_time_us = number(item, EVENT_TIME)?;
    let value = match string(item, VALUE_TYPE)? {
        "null" => OnlineValue::Null,
        "bool" => match item.get(VALUE) {
            Some(AttributeValue::Bool(b)) => OnlineValue::Bool(*b),
            _ => return Err(Corrupt("`bool` without a BOOL `value`".into())),
        },
        "int" => OnlineValue::Int(number(item, VALUE)?),
        "float" => OnlineValue::Float(f64::from_bits(number(item, VALUE)? as u64)),
        "string" => OnlineValue::String(string(item, VALUE)?.to_string()),
        "timestamp" => OnlineValue::Timestamp(number(item, VALUE)?),
        other => return Err(Corrupt(format!("unknown value_type `{other}`"))),
    };
    Ok(Decoded {
        entity,
        value,
        event_time_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: OnlineValue) -> OnlineValue {
        let item = encode("e", &value, -5, None);
        let decoded = decode(&item).unwrap();
        assert_eq!(decoded.entity, "e");
        assert_eq!(decoded.event_time_us, -5);
        decoded.value
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
            OnlineValue::Float(f64::MAX),
            OnlineValue::Float(f64::MIN_POSITIVE),
            OnlineValue::String(String::new()),
            OnlineValue::String("naïve \0 ✓ {x}:\n".into()),
            OnlineValue::Timestamp(i64::MIN),
        ] {
            assert_eq!(round_trip(value.clone()), value);
        }
    }

    #[test]
    fn nan_and_negative_zero_keep_their_bits() {
        for f in [f64::from_bits(0x7ff8_0000_0000_beef), -0.0_f64, f64::NAN] {
            match round_trip(OnlineValue::Float(f)) {
                OnlineValue::Float(back) => assert_eq!(back.to_bits(), f.to_bits()),
                other => panic!("expected a float, got {other:?}"),
            }
        }
    }

    #[test]
    fn ttl_attribute_only_when_asked() {
        assert!(!encode("e", &OnlineValue::Null, 1, None).contains_key(EXPIRES_AT));
        assert_eq!(
            encode("e", &OnlineValue::Null, 1, Some(42)).get(EXPIRES_AT),
            Some(&AttributeValue::N("42".into()))
        );
    }

    #[test]
    fn items_this_crate_did_not_write_are_reported() {
        let mut item = encode("e", &OnlineValue::Int(1), 1, None);
        item.remove(VALUE);
        assert!(decode(&item).unwrap_err().0.contains("no `value`"));
        let mut item = encode("e", &OnlineValue::Int(1), 1, None);
        item.insert(VALUE_TYPE.into(), AttributeValue::S("decimal".into()));
        assert!(decode(&item)
            .unwrap_err()
            .0
            .contains("unknown value_type `decimal`"));
        let mut item = encode("e", &OnlineValue::Int(1), 1, None);
        item.insert(EVENT_TIME.into(), AttributeValue::N("1.5".into()));
        assert!(decode(&item)
            .unwrap_err()
            .0
            .contains("not a 64-bit integer"));
    }

    #[test]
    fn entity_limits_follow_dynamodb() {
        assert!(!storable_entity(""));
        assert!(storable_entity("a"));
        assert!(storable_entity(&"é".repeat(1024)));
        assert!(!storable_entity(&"é".repeat(1025)));
    }
}
