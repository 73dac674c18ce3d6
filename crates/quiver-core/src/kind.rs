//! Resource kinds, resource identities and lifecycle status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kinds of resource Quiver knows. The order of the variants is the order in which
/// an apply writes them (providers before what uses them), which also gives concurrent
/// appliers one global lock order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    User,
    Provider,
    Entity,
    Source,
    Feature,
    Label,
    TrainingSet,
    Model,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::User,
        Kind::Provider,
        Kind::Entity,
        Kind::Source,
        Kind::Feature,
        Kind::Label,
        Kind::TrainingSet,
        Kind::Model,
    ];

    /// Sources, features, labels and training sets are immutable per variant; the other
    /// kinds are catalogue entries updated in place.
    pub fn is_versioned(self) -> bool {
        matches!(
            self,
            Kind::Source | Kind::Feature | Kind::Label | Kind::TrainingSet
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Provider => "provider",
            Kind::Entity => "entity",
            Kind::Source => "source",
            Kind::Feature => "feature",
            Kind::Label => "label",
            Kind::TrainingSet => "training_set",
            Kind::Model => "model",
        }
    }

    /// The plural path segment used by the REST API (`/api/v1/features`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Provider => "providers",
            Kind::Entity => "entities",
            Kind::Source => "sources",
            Kind::Feature => "features",
            Kind::Label => "labels",
            Kind::TrainingSet => "training-sets",
            Kind::Model => "models",
        }
    }

    pub fn from_plural(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown kind `{0}`, expected one of: user, provider, entity, source, feature, label, training_set, model")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// The identity of one stored resource: `(kind, name, variant)`. Unversioned kinds have
/// an empty variant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub struct ResourceId {
    pub kind: Kind,
    pub name: String,
    /// Empty for unversioned kinds (provider, entity, model, user).
    #[serde(default)]
    pub variant: String,
}

impl ResourceId {
    pub fn new(kind: Kind, name: impl Into<String>, variant: impl Into<String>) -> Self {
        ResourceId {
            kind,
            name: name.into(),
            variant: variant.into(),
        }
    }

    pub fn unversioned(kind: Kind, name: impl Into<String>) -> Self {
        ResourceId::new(kind, name, "")
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.variant.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}:{}", self.kind, self.name, self.variant)
        }
    }
}

/// Lifecycle of a resource: `pending → running → ready | failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Running,
    Ready,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Ready => "ready",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown status `{0}`, expected one of: pending, running, ready, failed")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Status::Pending),
            "running" => Ok(Status::Running),
            "ready" => Ok(Status::Ready),
            "failed" => Ok(Status::Failed),
            other => Err(UnknownStatus(other.to_string())),
        }
    }
}
