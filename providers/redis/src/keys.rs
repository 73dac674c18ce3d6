//! The key format, version `q1`: which Redis keys and hash fields hold what.
//!
//! | what | Redis type | key | fields |
//! |---|---|---|---|
//! | table registry of a namespace | hash | `q1:r:{<ns>}` | `<feature>:<variant>` → `"<generation> <ttl_us or ->"`; `#next-generation` → counter; `#deleted:<generation>` → `<feature>:<variant>` (tombstones awaiting a sweep); `#ttl-free` → `1` while no table has ever had a TTL |
//! | values of one entity | hash | `q1:e:<ns>:{<entity>}` | `<feature>:<variant>` → encoded value (see `value.rs`) |
//!
//! Every user-given string (`ns`, `entity`, `feature`, `variant`) is written through
//! [`escape`]: bytes outside `[A-Za-z0-9_.-]` become `%XX`. The escaped form never holds
//! `:`, `{`, `}`, `#`, `*`, `?`, `[`, `]`, `\`, whitespace or control bytes, so
//! - keys and fields split back unambiguously on `:` ([`parse_entity_key`],
//!   [`parse_table_field`]), whatever the strings hold;
//! - the `{…}` we put in a key is always its first and only hash tag, so a user cannot
//!   pick the Redis Cluster slot by putting braces in an entity name;
//! - a `SCAN MATCH` pattern built from an escaped namespace has no glob characters;
//! - table fields (always exactly one `:` and no `#`) never meet the registry's own `#…`
//!   fields.
//!
//! Hash tags: an entity's hash is tagged by the entity, so its features live in one slot
//! and one entity's write is one key; the registry is tagged by the namespace. Entities
//! spread over all slots.

/// The key-format version, the first component of every key.
pub const FORMAT: &str = "q1";

/// The registry field holding the last generation handed out.
pub(crate) const NEXT_GENERATION_FIELD: &str = "#next-generation";

/// The registry field present while no table of the namespace has ever had a TTL, so no
/// entity hash has an expiry (see `scripts::WRITE`).
pub(crate) const TTL_FREE_FIELD: &str = "#ttl-free";

/// The prefix of a registry tombstone field, `#deleted:<generation>`.
pub(crate) const TOMBSTONE_PREFIX: &str = "#deleted:";

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Percent-escape every byte outside `[A-Za-z0-9_.-]` (UTF-8 bytes of non-ASCII
/// characters included), so the result is printable ASCII without separators.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The inverse of [`escape`]; `None` for text [`escape`] cannot have produced.
pub fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_digit(*bytes.get(i + 1)?)?;
                let lo = hex_digit(*bytes.get(i + 2)?)?;
                let b = (hi << 4) | lo;
                if is_plain(b) {
                    // `escape` never escapes a plain byte: one string, one encoding.
                    return None;
                }
                out.push(b);
                i += 3;
            }
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The registry hash of a namespace.
pub fn registry_key(namespace: &str) -> String {
    format!("{FORMAT}:r:{{{}}}", escape(namespace))
}

/// The hash holding every feature value of one entity.
pub fn entity_key(namespace: &str, entity: &str) -> String {
    format!("{FORMAT}:e:{}:{{{}}}", escape(namespace), escape(entity))
}

/// A `SCAN MATCH` pattern for every entity hash of a namespace.
pub fn entity_key_pattern(namespace: &str) -> String {
    format!("{FORMAT}:e:{}:{{*", escape(namespace))
}

/// `(namespace, entity)` of an entity key; `None` for any other key.
pub fn parse_entity_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(FORMAT)?.strip_prefix(":e:")?;
    let (namespace, tagged) = rest.split_once(':')?;
    let entity = tagged.strip_prefix('{')?.strip_suffix('}')?;
    Some((unescape(namespace)?, unescape(entity)?))
}

/// The field of a feature table, in the registry and in every entity hash.
pub fn table_field(feature: &str, variant: &str) -> String {
    format!("{}:{}", escape(feature), escape(variant))
}

/// `(feature, variant)` of a table field; `None` for any other field.
pub fn parse_table_field(field: &str) -> Option<(String, String)> {
    let (feature, variant) = field.split_once(':')?;
    Some((unescape(feature)?, unescape(variant)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "",
        "plain",
        ":",
        "a:b",
        "::",
        "{",
        "}",
        "{tag}",
        "}{",
        "%",
        "%41",
        "#next-generation",
        "line\nbreak\r\n",
        "tab\tnul\0",
        "naïve café ✓ 🦀",
        "*?[]\\",
        "  spaces  ",
    ];

    #[test]
    fn escape_round_trips_and_leaves_no_separators() {
        for s in HOSTILE {
            let e = escape(s);
            assert_eq!(unescape(&e).as_deref(), Some(*s), "{s:?} via {e:?}");
            assert!(
                e.bytes().all(|b| is_plain(b) || b == b'%'),
                "{s:?} escaped to {e:?}"
            );
        }
        assert_eq!(
            escape("user_id-1.2"),
            "user_id-1.2",
            "plain names stay readable"
        );
        assert_eq!(escape("a:b{c}"), "a%3Ab%7Bc%7D");
    }

    #[test]
    fn unescape_refuses_what_escape_never_writes() {
        for bad in ["%", "%4", "%zz", "%41", "a:b", "{", "%c3", "%FF"] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keys_and_fields_round_trip_for_hostile_strings() {
        for ns in HOSTILE {
            for entity in HOSTILE {
                let key = entity_key(ns, entity);
                assert_eq!(
                    parse_entity_key(&key),
                    Some((ns.to_string(), entity.to_string())),
                    "{key:?}"
                );
                // The tag we write is the first `{` and the first `}` after it.
                let open = key.find('{').unwrap();
                let close = key.find('}').unwrap();
                assert_eq!(&key[open + 1..close], escape(entity));
                assert_eq!(close, key.len() - 1);
            }
            for variant in HOSTILE {
                let field = table_field(ns, variant);
                assert_eq!(
                    parse_table_field(&field),
                    Some((ns.to_string(), variant.to_string()))
                );
                assert!(!field.starts_with('#'));
            }
        }
    }

    #[test]
    fn distinct_names_give_distinct_keys() {
        let mut keys = std::collections::HashSet::new();
        let mut fields = std::collections::HashSet::new();
        for a in HOSTILE {
            for b in HOSTILE {
                assert!(keys.insert(entity_key(a, b)), "{a:?} {b:?}");
                assert!(fields.insert(table_field(a, b)), "{a:?} {b:?}");
            }
        }
        assert!(!fields.contains(NEXT_GENERATION_FIELD));
        assert!(!fields.contains(TTL_FREE_FIELD));
        assert!(!fields.contains(&format!("{TOMBSTONE_PREFIX}1")));
    }

    #[test]
    fn the_scan_pattern_matches_only_its_namespace() {
        assert_eq!(entity_key_pattern("a*b"), "q1:e:a%2Ab:{*");
        assert!(entity_key("ns", "e").starts_with(entity_key_pattern("ns").trim_end_matches('*')));
        assert!(!entity_key("ns2", "e").starts_with(entity_key_pattern("ns").trim_end_matches('*')));
        assert_eq!(registry_key("x:y"), "q1:r:{x%3Ay}");
    }
}
