//! Rules for names and variants. Names end up in SQL identifiers, object-store paths,
//! online-store keys and URLs, so they are deliberately narrow: ASCII only (no unicode
//! look-alikes), no quoting characters, no path separators.

pub const MAX_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} `{value}` is too long ({len} characters, at most {MAX_LEN})")]
    TooLong {
        what: &'static str,
        value: String,
        len: usize,
    },
    #[error("{what} `{value}` is invalid: {rule}")]
    Invalid {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
}

const NAME_RULE: &str = "use lowercase ASCII letters, digits, `_` or `-`, starting with a letter";
const VARIANT_RULE: &str = "use ASCII letters, digits, `_` or `-`, starting with a letter or digit";

/// Validate a resource name: `^[a-z][a-z0-9_-]{0,62}$`.
pub fn validate_name(value: &str) -> Result<(), NameError> {
    validate(value, "name", NAME_RULE, |i, c| {
        if i == 0 {
            c.is_ascii_lowercase()
        } else {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
        }
    })
}

/// Variants that would be read as a path segment of the REST API.
const RESERVED_VARIANTS: [&str; 1] = ["variants"];

/// Validate a variant: `^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`, not a reserved word.
pub fn validate_variant(value: &str) -> Result<(), NameError> {
    if RESERVED_VARIANTS.contains(&value) {
        return Err(NameError::Invalid {
            what: "variant",
            value: value.to_string(),
            rule:
                "this word is reserved by the REST API (`/{kind}/{name}/variants`); choose another",
        });
    }
    validate(value, "variant", VARIANT_RULE, |i, c| {
        if i == 0 {
            c.is_ascii_alphanumeric()
        } else {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        }
    })
}

fn validate(
    value: &str,
    what: &'static str,
    rule: &'static str,
    allowed: impl Fn(usize, char) -> bool,
) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty { what });
    }
    let len = value.chars().count();
    if len > MAX_LEN {
        return Err(NameError::TooLong {
            what,
            value: value.chars().take(MAX_LEN).collect::<String>() + "…",
            len,
        });
    }
    if value.chars().enumerate().all(|(i, c)| allowed(i, c)) {
        Ok(())
    } else {
        Err(NameError::Invalid {
            what,
            value: value.escape_debug().to_string(),
            rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for n in ["users", "avg_amount_7d", "fraud-label", "a"] {
            assert_eq!(validate_name(n), Ok(()), "{n}");
        }
        for v in ["v1", "2024-01-01", "Main_v2"] {
            assert_eq!(validate_variant(v), Ok(()), "{v}");
        }
    }

    #[test]
    fn refuses_hostile_names() {
        let long = "a".repeat(64);
        for n in [
            "",
            "Users",
            "1abc",
            "a b",
            "a\"b",
            "a'; drop table x; --",
            "a/b",
            "a:b",
            "a.b",
            "uѕers", // Cyrillic dze look-alike
            "a\u{200b}b",
            long.as_str(),
        ] {
            assert!(validate_name(n).is_err(), "{n:?} should be refused");
        }
        for v in ["", "-v1", "v 1", "v.1", "v1;", "vé", "variants"] {
            assert!(validate_variant(v).is_err(), "{v:?} should be refused");
        }
    }
}
