//! The `quiver` command line, linked into this package so its tests can run it.

use std::process::ExitCode;

fn main() -> ExitCode {
    quiver_cli::main()
}
