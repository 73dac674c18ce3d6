//! Transformations: the user's SQL with `{{ input }}` placeholders bound to tables.

use quiver_provider_sdk::Transformation;

use crate::{Dialect, Resolve, SqlError};

/// The transformation's SQL with each `{{ placeholder }}` replaced by the quoted physical table of
/// its input (placeholders inside string literals and comments are left alone; an unknown
/// placeholder is an error naming it).
///
/// # Errors
/// [`SqlError::Invalid`] for an unknown or unterminated placeholder,
/// [`SqlError::InvalidIdentifier`] for a table name the dialect refuses.
pub fn transformation(
    d: &dyn Dialect,
    t: &Transformation,
    resolve: Resolve,
) -> Result<String, SqlError> {
    let sql = t.sql.as_str();
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &sql[i..];
        let skip_to = if rest.starts_with("--") || (rest.starts_with('#') && d.name() == "bigquery")
        {
            rest.find('\n').map_or(sql.len(), |n| i + n + 1)
        } else if let Some(comment) = rest.strip_prefix("/*") {
            comment.find("*/").map_or(sql.len(), |n| i + 2 + n + 2)
        } else if let Some(tag) = dollar_tag(rest) {
            rest[tag.len()..]
                .find(tag)
                .map_or(sql.len(), |n| i + tag.len() + n + tag.len())
        } else if let Some(quote @ (b'\'' | b'"' | b'`')) = rest.bytes().next() {
            quoted_end(bytes, i, quote, quote == b'\'' && d.backslash_escapes())
        } else if rest.starts_with("{{") {
            let Some(close) = rest.find("}}") else {
                return Err(SqlError::Invalid(format!(
                    "unterminated placeholder `{}` in transformation SQL",
                    rest.chars().take(40).collect::<String>()
                )));
            };
            let name = rest[2..close].trim();
            let (_, table) = t
                .inputs
                .iter()
                .find(|(placeholder, _)| placeholder.trim() == name)
                .ok_or_else(|| {
                    SqlError::Invalid(format!(
                        "unknown placeholder `{{{{ {name} }}}}` in transformation SQL (inputs: {})",
                        t.inputs
                            .iter()
                            .map(|(p, _)| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            out.push_str(&sql[copied..i]);
            out.push_str(&d.quote_table(&resolve(table)?)?);
            i += close + 2;
            copied = i;
            continue;
        } else {
            i + rest.chars().next().map_or(1, char::len_utf8)
        };
        i = skip_to;
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// The end (exclusive) of the quoted text starting at `start`: a doubled quote stays
/// inside, and so does a backslash-escaped one where the dialect escapes.
fn quoted_end(bytes: &[u8], start: usize, quote: u8, backslash: bool) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if backslash && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// A Postgres dollar-quote opening tag (`$$` or `$tag$`) at the start of `rest`.
fn dollar_tag(rest: &str) -> Option<&str> {
    let tail = rest.strip_prefix('$')?;
    let end = tail.find('$')?;
    let tag = &tail[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    valid.then(|| &rest[..end + 2])
}
