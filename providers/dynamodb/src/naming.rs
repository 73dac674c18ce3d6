//! DynamoDB table names for feature tables and for the registry table.
//!
//! DynamoDB table names are 3 to 255 characters of `[a-zA-Z0-9_.-]`; feature and variant
//! names are any text. A feature table is named
//! `{prefix}{feature}.{variant}.{hash}`, where `feature` and `variant` keep their
//! characters from `[a-zA-Z0-9_-]` (anything else, `.` included, becomes `_`) and are cut
//! to a bounded length, so a person listing tables recognises them, and `hash` is 16 hex
//! digits of a 64-bit FNV-1a hash of the exact `(feature, variant)`, so names that
//! collapse to the same readable part (`a:b` and `a/b`, or two long names sharing their
//! first 96 characters) still get different tables.
//!
//! The registry table is `{prefix}registry`: it has no `.` after the prefix, while every
//! feature table has two, so the two can never be confused.

use quiver_provider_sdk::OnlineTableRef;

/// The prefix used when the configuration names none.
pub const DEFAULT_TABLE_PREFIX: &str = "quiver_";

/// Longest accepted `table_prefix`, leaving room for the feature, variant and hash.
pub const MAX_PREFIX_LEN: usize = 64;

/// Readable characters kept from a feature name and a variant name.
const MAX_FEATURE_CHARS: usize = 96;
const MAX_VARIANT_CHARS: usize = 64;

/// DynamoDB's limits on table names.
const MIN_TABLE_NAME_LEN: usize = 3;
const MAX_TABLE_NAME_LEN: usize = 255;

/// Why a table prefix was refused.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(format!(
            "table_prefix is {} characters long; at most {MAX_PREFIX_LEN} are allowed",
            prefix.len()
        ));
    }
    if let Some(bad) = prefix.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "table_prefix contains {bad:?}; DynamoDB table names allow only letters, digits, `_`, `-` and `.`"
        ));
    }
    Ok(())
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'
}

/// `name` with every character outside `[a-zA-Z0-9_-]` replaced by `_`, cut to `max`
/// characters.
fn readable(name: &str, max: usize) -> String {
    name.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// 64-bit FNV-1a over the length-prefixed feature and variant, so `("ab", "c")` and
/// `("a", "bc")` differ. Stable across releases and platforms: it names stored tables.
fn table_hash(table: &OnlineTableRef) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in [table.feature.as_bytes(), table.variant.as_bytes()] {
        for byte in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// The DynamoDB table holding `table`'s values.
pub(crate) fn table_name(prefix: &str, table: &OnlineTableRef) -> String {
    let name = format!(
        "{prefix}{}.{}.{:016x}",
        readable(&table.feature, MAX_FEATURE_CHARS),
        readable(&table.variant, MAX_VARIANT_CHARS),
        table_hash(table)
    );
    debug_assert!((MIN_TABLE_NAME_LEN..=MAX_TABLE_NAME_LEN).contains(&name.len()));
    name
}

/// The registry table: one item per feature table, with its TTL.
pub(crate) fn registry_name(prefix: &str) -> String {
    let name = format!("{prefix}registry");
    debug_assert!((MIN_TABLE_NAME_LEN..=MAX_TABLE_NAME_LEN).contains(&name.len()));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(feature: &str, variant: &str) -> OnlineTableRef {
        OnlineTableRef {
            feature: feature.into(),
            variant: variant.into(),
        }
    }

    fn valid(name: &str) -> bool {
        (MIN_TABLE_NAME_LEN..=MAX_TABLE_NAME_LEN).contains(&name.len()) && name.chars().all(allowed)
    }

    #[test]
    fn hostile_names_give_valid_distinct_table_names() {
        let long = "x".repeat(10_000);
        let cases = [
            t("", ""),
            t("a:b", "v1"),
            t("a/b", "v1"),
            t("a.b", "v1"),
            t("a", "b.v1"),
            t("ab", "c"),
            t("a", "bc"),
            t("{{weird}}\n", "naïve ✓ 🚀"),
            t(&long, &long),
            t(&format!("{long}y"), &long),
        ];
        let longest_prefix = format!("{}.", "p".repeat(MAX_PREFIX_LEN - 1));
        assert!(check_prefix(&longest_prefix).is_ok());
        let mut seen = std::collections::HashSet::new();
        for case in &cases {
            let name = table_name(&longest_prefix, case);
            assert!(valid(&name), "{case:?} → {name}");
            assert!(seen.insert(name.clone()), "{case:?} collides: {name}");
        }
        assert!(valid(&table_name("", &t("", ""))));
        assert!(valid(&registry_name("")));
    }

    /// FNV-1a 64 of `("avg_amount", "v1")`, computed independently.
    const PINNED_AVG_AMOUNT_V1: u64 = 0xcc85_05c9_607c_d92d;

    #[test]
    fn names_are_stable() {
        // The hash names stored tables: changing it would orphan every deployed table.
        assert_eq!(
            table_name("quiver_", &t("avg_amount", "v1")),
            format!(
                "quiver_avg_amount.v1.{:016x}",
                table_hash(&t("avg_amount", "v1"))
            )
        );
        assert_eq!(table_hash(&t("avg_amount", "v1")), PINNED_AVG_AMOUNT_V1);
    }

    #[test]
    fn registry_never_looks_like_a_feature_table() {
        let registry = registry_name("quiver_");
        assert_eq!(registry, "quiver_registry");
        assert_ne!(registry, table_name("quiver_", &t("registry", "")));
        assert!(!registry["quiver_".len()..].contains('.'));
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("quiver_prod-eu.").is_ok());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("bad prefix").unwrap_err().contains("' '"));
        assert!(check_prefix(&"p".repeat(65))
            .unwrap_err()
            .contains("at most 64"));
    }
}
