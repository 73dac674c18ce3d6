use std::process::ExitCode;

fn main() -> ExitCode {
    quiver_cli::main()
}
