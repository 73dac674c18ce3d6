//! Reading definition files given with `-f`: single files or directories searched
//! recursively, in a sorted order so a plan is the same on every machine. Everything is
//! parsed and validated before any store or server is contacted.

use std::fs;
use std::path::{Path, PathBuf};

use quiver_core::{parse_yaml_documents, SourcedDefinition};

use crate::error::CliError;

/// Parse every definition under `paths`, in order. Origins name files as the user wrote
/// them (`defs/features.yaml:12`), so messages point where people can look.
pub fn load(paths: &[PathBuf]) -> Result<Vec<SourcedDefinition>, CliError> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| {
            CliError::failed(format!("cannot read {}: {}", path.display(), io_reason(&e)))
        })?;
        if meta.is_dir() {
            let before = files.len();
            collect_yaml_files(path, &mut files)?;
            files[before..].sort();
            if files.len() == before {
                return Err(CliError::failed(format!(
                    "{} holds no *.yaml or *.yml files",
                    path.display()
                )));
            }
        } else {
            files.push(path.clone());
        }
    }

    let mut definitions = Vec::new();
    for file in &files {
        let bytes = fs::read(file).map_err(|e| {
            CliError::failed(format!("cannot read {}: {}", file.display(), io_reason(&e)))
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| CliError::failed(format!("{}: not valid UTF-8 text", file.display())))?;
        let parsed =
            parse_yaml_documents(&file.display().to_string(), &text).map_err(CliError::failed)?;
        definitions.extend(parsed);
    }
    if definitions.is_empty() {
        return Err(CliError::failed(
            "no definitions found: the files hold no YAML documents",
        ));
    }
    Ok(definitions)
}

/// Every `*.yaml` / `*.yml` file under `dir`. Hidden entries (`.git`) are skipped, and
/// symbolic links to directories are not followed, so a link loop cannot recurse forever.
fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CliError> {
    let entries = fs::read_dir(dir).map_err(|e| {
        CliError::failed(format!("cannot read {}: {}", dir.display(), io_reason(&e)))
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            CliError::failed(format!("cannot read {}: {}", dir.display(), io_reason(&e)))
        })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = dir.join(&*name);
        let file_type = entry.file_type().map_err(|e| {
            CliError::failed(format!("cannot read {}: {}", path.display(), io_reason(&e)))
        })?;
        if file_type.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if (name.ends_with(".yaml") || name.ends_with(".yml")) && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// The reason of an I/O error without Rust's `(os error 2)` suffix.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::Kind;

    fn quickstart() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart/defs")
    }

    #[test]
    fn quickstart_definitions_parse() {
        let defs = load(&[quickstart()]).unwrap();
        let count = |kind: Kind| defs.iter().filter(|d| d.definition.kind() == kind).count();
        assert_eq!(count(Kind::User), 1);
        assert_eq!(count(Kind::Provider), 2);
        assert_eq!(count(Kind::Entity), 2);
        assert_eq!(count(Kind::Source), 4);
        assert!(count(Kind::Feature) >= 5);
        assert_eq!(count(Kind::Label), 1);
        assert_eq!(count(Kind::TrainingSet), 1);
        assert_eq!(count(Kind::Model), 1);
        // Files in sorted order, subdirectories included, origins name file and line.
        let files: Vec<&str> = defs
            .iter()
            .map(|d| d.origin.rsplit_once(':').unwrap().0)
            .map(|f| f.rsplit_once("defs/").unwrap().1)
            .collect();
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(files, sorted);
        assert!(files.contains(&"features/user_spend.yaml"), "{files:?}");
    }

    #[test]
    fn directory_walk_is_sorted_recursive_and_skips_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let p = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        };
        write("b.yml", "kind: entity\nname: b\nowner: o\n");
        write("a/z.yaml", "kind: entity\nname: z\nowner: o\n");
        write("a.yaml", "kind: entity\nname: a\nowner: o\n");
        write("notes.txt", "not yaml");
        write(".hidden/x.yaml", "kind: entity\nname: hidden\nowner: o\n");
        let names: Vec<String> = load(&[dir.path().to_path_buf()])
            .unwrap()
            .iter()
            .map(|d| d.definition.name().to_string())
            .collect();
        // Sorted by path components: the directory `a` comes before the file `a.yaml`.
        assert_eq!(names, ["z", "a", "b"]);
    }

    #[test]
    fn errors_name_the_file_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yaml");
        fs::write(
            &bad,
            "kind: entity\nname: a\nowner: o\n---\nkind: entity\nname: [x\n",
        )
        .unwrap();
        let err = load(std::slice::from_ref(&bad)).unwrap_err();
        let msg = err.message().unwrap();
        assert!(msg.starts_with(&format!("{}:", bad.display())), "{msg}");
        assert!(msg.contains("(document 2)"), "{msg}");

        let err = load(&[dir.path().join("missing.yaml")]).unwrap_err();
        assert!(
            err.message().unwrap().contains("No such file or directory"),
            "{err:?}"
        );

        let empty = tempfile::tempdir().unwrap();
        let err = load(&[empty.path().to_path_buf()]).unwrap_err();
        assert!(err.message().unwrap().contains("no *.yaml"), "{err:?}");
    }
}
