//! The repository's promises to a newcomer: the README gives exactly two commands (the
//! quickstart and the tests), and CI runs the very same test command.

use std::os::unix::fs::PermissionsExt;

use quiver_e2e::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Lines inside fenced code blocks, without blank lines and comments.
fn fenced_commands(markdown: &str) -> Vec<String> {
    let mut inside = false;
    let mut commands = Vec::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            inside = !inside;
            continue;
        }
        if inside && !trimmed.is_empty() && !trimmed.starts_with('#') {
            commands.push(trimmed.trim_start_matches("$ ").to_string());
        }
    }
    assert!(!inside, "README.md has an unclosed code block");
    commands
}

#[test]
fn readme_has_exactly_the_two_commands() {
    assert_eq!(
        fenced_commands(&read("README.md")),
        ["./scripts/quickstart.sh", "./scripts/test.sh"]
    );
    for script in [
        "scripts/quickstart.sh",
        "scripts/test.sh",
        "scripts/services.sh",
        ".ci/run",
    ] {
        let mode = std::fs::metadata(repo_root().join(script))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "{script} is not executable");
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = read(".ci/run");
    assert!(ci.starts_with("#!/usr/bin/env bash\n"), "{ci}");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| *l != "set -euo pipefail" && !l.starts_with("cd "))
        .collect();
    assert_eq!(commands, ["./scripts/test.sh"]);
}
