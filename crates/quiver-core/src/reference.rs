//! References from one definition to another versioned resource: `name` (the default
//! variant, pinned at apply time) or `name:variant`, written as a string or as a map.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::names::{validate_name, validate_variant, NameError};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceRef {
    pub name: String,
    /// `None` until apply pins it to the default variant; stored references are pinned.
    pub variant: Option<String>,
}

impl ResourceRef {
    pub fn new(name: impl Into<String>, variant: Option<String>) -> Self {
        ResourceRef {
            name: name.into(),
            variant,
        }
    }

    /// Parse `name` or `name:variant`.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let (name, variant) = match s.split_once(':') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (s, None),
        };
        validate_name(name)?;
        if let Some(v) = &variant {
            validate_variant(v)?;
        }
        Ok(ResourceRef::new(name, variant))
    }

    pub fn validate(&self) -> Result<(), NameError> {
        validate_name(&self.name)?;
        if let Some(v) = &self.variant {
            validate_variant(v)?;
        }
        Ok(())
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.variant {
            Some(v) => write!(f, "{}:{}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

impl Serialize for ResourceRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ResourceRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        impl<'de> Visitor<'de> for RefVisitor {
            type Value = ResourceRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a reference: `name`, `name:variant` or `{name, variant}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResourceRef, E> {
                ResourceRef::parse(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResourceRef, A::Error> {
                let (mut name, mut variant) = (None::<String>, None::<String>);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value()?),
                        "variant" => variant = Some(map.next_value()?),
                        other => return Err(de::Error::unknown_field(other, &["name", "variant"])),
                    }
                }
                let r = ResourceRef::new(
                    name.ok_or_else(|| de::Error::missing_field("name"))?,
                    variant,
                );
                r.validate().map_err(de::Error::custom)?;
                Ok(r)
            }
        }
        d.deserialize_any(RefVisitor)
    }
}

impl utoipa::PartialSchema for ResourceRef {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Reference to a versioned resource: `name` (default variant, pinned at apply) or `name:variant`",
            ))
            .examples(["transactions:v1"])
            .into()
    }
}

impl utoipa::ToSchema for ResourceRef {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_string_and_map_forms() {
        let r: ResourceRef = serde_json::from_str(r#""tx:v1""#).unwrap();
        assert_eq!(r, ResourceRef::new("tx", Some("v1".into())));
        let r: ResourceRef = serde_json::from_str(r#"{"name":"tx"}"#).unwrap();
        assert_eq!(r, ResourceRef::new("tx", None));
        assert_eq!(serde_json::to_string(&r).unwrap(), r#""tx""#);
        assert!(serde_json::from_str::<ResourceRef>(r#""tx:v1:x""#).is_err());
        assert!(serde_json::from_str::<ResourceRef>(r#""Tx""#).is_err());
        assert!(serde_json::from_str::<ResourceRef>(r#"{"name":"tx","lag":1}"#).is_err());
    }
}
