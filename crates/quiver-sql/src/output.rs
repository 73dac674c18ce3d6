//! Physical names of Quiver-owned outputs.

use quiver_provider_sdk::OutputRef;
use sha2::{Digest, Sha256};

/// Hex digits of the hash suffix.
const HASH_LEN: usize = 16;

/// A stable physical table name for a Quiver output, e.g. `qo_training_set_fraud_v1`, shortened with
/// a hash suffix when longer than `max_len`, distinct for distinct (kind, name, variant) — names may
/// contain '-' and variants uppercase, so it is quoted like any identifier.
///
/// The readable form `qo_<kind>_<name>_<variant>` is used only when it can be read back
/// unambiguously: a known kind, a name of ASCII letters, digits, '_' and '-', and a
/// variant without '_' that is not itself 16 hex digits. Anything else (or anything too
/// long) becomes a sanitized, truncated prefix plus `_` and 16 hex digits of a SHA-256
/// over the three parts, which never collides with a readable form.
pub fn output_table_name(output: &OutputRef, max_len: usize) -> String {
    let plain = format!("qo_{}_{}_{}", output.kind, output.name, output.variant);
    let known_kind = matches!(output.kind.as_str(), "source" | "training_set");
    let name_ok = !output.name.is_empty()
        && output
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let variant_ok = !output.variant.is_empty()
        && output
            .variant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !looks_like_hash(&output.variant);
    if known_kind && name_ok && variant_ok && plain.len() <= max_len {
        return plain;
    }
    let mut hasher = Sha256::new();
    for part in [&output.kind, &output.name, &output.variant] {
        // Length-prefixed, so no two triples hash the same input.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let hash: String = digest
        .iter()
        .take(HASH_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let readable: String = plain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let keep = max_len.saturating_sub(HASH_LEN + 1).min(readable.len());
    format!("{}_{hash}", &readable[..keep])
}

fn looks_like_hash(variant: &str) -> bool {
    variant.len() == HASH_LEN && variant.chars().all(|c| c.is_ascii_hexdigit())
}
