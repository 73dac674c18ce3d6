//! Quiver's resource model: the kinds of resource, their declarative definitions, the
//! rules a name must follow, references between resources, and parsing of definition
//! files. Everything here is pure (no I/O) so every other crate can share one truth.

pub mod definition;
pub mod documents;
pub mod kind;
pub mod names;
pub mod reference;
pub mod schedule;
pub mod secret;

pub use definition::{
    ColumnDef, Definition, DurationSpec, EntityDef, FeatureDef, LabelDef, LabelEntity,
    MaterializationSpec, ModelDef, ProviderConfig, ProviderDef, SourceDef, SourceLocation,
    TrainingSetDef, TrainingSetFeature, UserDef, ValueType,
};
pub use documents::{parse_documents_json, parse_yaml_documents, DocumentError, SourcedDefinition};
pub use kind::{Kind, ResourceId, Status};
pub use names::{validate_name, validate_variant, NameError};
pub use reference::ResourceRef;
pub use secret::Secret;
