//! Secret values in provider configurations (passwords, keys, service-account JSON).
//!
//! A secret is written inline or as a reference to an environment variable of the
//! process that uses it. Its `Debug` never shows an inline value, and API responses go
//! through [`Secret::redacted`], so a secret is neither logged nor returned.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

/// Shown instead of an inline secret by the API. Applying it back is refused, so a
/// definition exported from the API can never overwrite a real secret with the mask.
pub const REDACTED: &str = "**redacted**";

#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The value itself, kept in the metadata store.
    Inline(String),
    /// The name of an environment variable read where the secret is used.
    Env(String),
}

impl Secret {
    /// The same secret with an inline value replaced by [`REDACTED`].
    pub fn redacted(&self) -> Secret {
        match self {
            Secret::Inline(_) => Secret::Inline(REDACTED.to_string()),
            Secret::Env(name) => Secret::Env(name.clone()),
        }
    }

    /// Resolve to the value: inline, or read from the environment.
    pub fn expose(&self) -> Result<String, String> {
        match self {
            Secret::Inline(v) => Ok(v.clone()),
            Secret::Env(name) => std::env::var(name)
                .map_err(|_| format!("environment variable `{name}` holding a secret is not set")),
        }
    }

    pub fn is_redaction_mask(&self) -> bool {
        matches!(self, Secret::Inline(v) if v == REDACTED)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Secret(**redacted**)"),
            Secret::Env(name) => write!(f, "Secret(env:{name})"),
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Secret::Inline(v) => s.serialize_str(v),
            Secret::Env(name) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("env", name)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl<'de> Visitor<'de> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a secret: a string, or `{env: VARIABLE_NAME}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::Inline(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
                let mut env: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "env" if env.is_none() => env = Some(map.next_value()?),
                        "env" => return Err(de::Error::duplicate_field("env")),
                        other => return Err(de::Error::unknown_field(other, &["env"])),
                    }
                }
                let env = env.ok_or_else(|| de::Error::missing_field("env"))?;
                if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(de::Error::custom(format!(
                        "environment variable name `{}` is invalid: use ASCII letters, digits and `_`",
                        env.escape_debug()
                    )));
                }
                Ok(Secret::Env(env))
            }
        }
        d.deserialize_any(SecretVisitor)
    }
}

impl utoipa::PartialSchema for Secret {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .description(Some(
                "A secret: inline (returned redacted) or `{\"env\": \"VAR\"}` read from the environment",
            ))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .property("env", ObjectBuilder::new().schema_type(Type::String))
                    .required("env"),
            )
            .into()
    }
}

impl utoipa::ToSchema for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_inline_value() {
        let s = Secret::Inline("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.redacted(), Secret::Inline(REDACTED.into()));
    }

    #[test]
    fn parses_both_forms() {
        let s: Secret = serde_json::from_str(r#""pw""#).unwrap();
        assert_eq!(s, Secret::Inline("pw".into()));
        let s: Secret = serde_json::from_str(r#"{"env":"PG_PASSWORD"}"#).unwrap();
        assert_eq!(s, Secret::Env("PG_PASSWORD".into()));
        assert!(serde_json::from_str::<Secret>(r#"{"file":"x"}"#).is_err());
        assert!(serde_json::from_str::<Secret>(r#"{"env":"A;B"}"#).is_err());
    }
}
