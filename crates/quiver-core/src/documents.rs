//! Reading definitions from YAML files (one or many documents per file) and from the JSON
//! apply body, with errors that point at the file, line and column or the document.

use std::fmt;

use crate::definition::Definition;

/// A definition together with where it was written, for messages.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedDefinition {
    pub definition: Definition,
    /// `file.yaml:12` (YAML) or `documents[3]` (JSON).
    pub origin: String,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    /// The file, or `request` for an API body.
    pub file: String,
    /// 1-based line and column, when the parser knows them.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// 1-based document number within the file.
    pub document: Option<usize>,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if let Some(doc) = self.document {
            write!(f, " (document {doc})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Split a YAML stream into documents at `---` lines. A `---` at column 0 always starts
/// a document (block scalars are indented), so a line scan is exact and lets every error
/// carry a line number in the whole file even when serde cannot give one.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start_line = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---" || line.starts_with("--- ") || line == "...";
        if is_marker {
            docs.push((start_line, std::mem::take(&mut current)));
            start_line = i + 2;
            if let Some(rest) = line.strip_prefix("--- ") {
                // Content after the marker on the same line belongs to the new document.
                current.push_str(rest);
                current.push('\n');
                start_line = i + 1;
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start_line, current));
    docs.into_iter()
        .filter(|(_, d)| d.lines().any(is_content))
        .collect()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// The line of a document's first content line, to point people at it.
fn first_content_line(start_line: usize, doc: &str) -> usize {
    start_line + doc.lines().position(is_content).unwrap_or(0)
}

/// Parse every definition in one YAML file's text.
pub fn parse_yaml_documents(
    file: &str,
    text: &str,
) -> Result<Vec<SourcedDefinition>, DocumentError> {
    let mut out = Vec::new();
    for (index, (start_line, doc)) in split_documents(text).into_iter().enumerate() {
        let shown_line = first_content_line(start_line, &doc);
        let error = |line: Option<usize>, column: Option<usize>, message: String| DocumentError {
            file: file.to_string(),
            line,
            column,
            document: Some(index + 1),
            message,
        };
        // First as a plain value: a syntax error carries an exact location.
        let value: serde_yaml::Value = serde_yaml::from_str(&doc).map_err(|e| {
            let loc = e.location();
            error(
                Some(
                    loc.as_ref()
                        .map_or(start_line, |l| start_line + l.line() - 1),
                ),
                loc.map(|l| l.column()),
                strip_location(&e.to_string()),
            )
        })?;
        if !value.is_mapping() {
            return Err(error(
                Some(shown_line),
                None,
                "a definition must be a mapping with `kind`, `name`, ... fields".to_string(),
            ));
        }
        let definition: Definition = serde_yaml::from_value(value)
            .map_err(|e| error(Some(shown_line), None, describe_shape_error(&e.to_string())))?;
        definition.validate().map_err(|e| {
            error(
                Some(shown_line),
                None,
                format!("{} {}: {e}", definition.kind(), definition.name()),
            )
        })?;
        out.push(SourcedDefinition {
            definition,
            origin: format!("{file}:{shown_line}"),
        });
    }
    Ok(out)
}

/// Parse the JSON apply body's documents (each a definition object).
pub fn parse_documents_json(
    documents: Vec<serde_json::Value>,
) -> Result<Vec<SourcedDefinition>, DocumentError> {
    let mut out = Vec::new();
    for (i, value) in documents.into_iter().enumerate() {
        let origin = format!("documents[{i}]");
        let error = |message: String| DocumentError {
            file: "request".to_string(),
            line: None,
            column: None,
            document: Some(i + 1),
            message: format!("{origin}: {message}"),
        };
        let definition: Definition = serde_path_to_error::deserialize(value)
            .map_err(|e| error(describe_shape_error(&e.to_string())))?;
        definition
            .validate()
            .map_err(|e| error(format!("{} {}: {e}", definition.kind(), definition.name())))?;
        out.push(SourcedDefinition { definition, origin });
    }
    Ok(out)
}

/// serde_yaml appends " at line X column Y[, while parsing … at line …]" to messages,
/// counted within the document; we report file-relative locations ourselves.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Make serde's messages about the tag field speak the user's language.
fn describe_shape_error(message: &str) -> String {
    let message = strip_location(message);
    if message.contains("missing field `kind`") {
        return "missing field `kind` (one of: user, provider, entity, source, feature, label, training_set, model)".into();
    }
    if message.starts_with("unknown variant") && message.contains("`user`, `provider`") {
        return format!("unknown kind: {message}");
    }
    if message.starts_with("unknown variant") && message.contains("`files`, `postgres`") {
        return format!("unknown provider type: {message}");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# users
kind: entity
name: user
owner: risk
---
kind: provider
name: local
owner: platform
config:
  type: files
  root: ./data
--- # the raw table
kind: source
name: transactions
variant: v1
owner: risk
provider: local
file: {path: transactions.parquet}
---
";

    #[test]
    fn reads_several_documents_with_origins() {
        let docs = parse_yaml_documents("defs.yaml", GOOD).unwrap();
        let origins: Vec<_> = docs.iter().map(|d| d.origin.as_str()).collect();
        assert_eq!(origins, ["defs.yaml:2", "defs.yaml:6", "defs.yaml:13"]);
    }

    #[test]
    fn syntax_errors_carry_file_line_and_column() {
        let bad =
            "kind: entity\nname: user\nowner: o\n---\nkind: entity\nname: [unclosed\nowner: x\n";
        let err = parse_yaml_documents("defs/bad.yaml", bad).unwrap_err();
        assert_eq!(err.file, "defs/bad.yaml");
        assert_eq!(err.document, Some(2));
        assert!(err.line.unwrap() >= 5, "{err}");
        assert!(err.column.is_some(), "{err}");
        assert!(err.to_string().starts_with("defs/bad.yaml:"), "{err}");
        assert!(
            !err.message.contains("at line"),
            "one location, file-relative: {err}"
        );
    }

    #[test]
    fn shape_errors_name_the_document() {
        let err = parse_yaml_documents("f.yaml", "kind: entity\nname: u\nowner: o\nownr: x\n")
            .unwrap_err();
        assert!(err.message.contains("unknown field `ownr`"), "{err}");
        let err = parse_yaml_documents("f.yaml", "kind: entiy\nname: u\n").unwrap_err();
        assert!(err.message.contains("unknown kind"), "{err}");
        let err = parse_yaml_documents("f.yaml", "name: u\n").unwrap_err();
        assert!(err.message.contains("missing field `kind`"), "{err}");
        let err = parse_yaml_documents("f.yaml", "- a\n- b\n").unwrap_err();
        assert!(err.message.contains("mapping"), "{err}");
        let err = parse_yaml_documents(
            "f.yaml",
            "kind: provider\nname: p\nowner: o\nconfig: {type: mysql, host: h}\n",
        )
        .unwrap_err();
        assert!(err.message.contains("unknown provider type"), "{err}");
    }
}
