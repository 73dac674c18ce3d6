use std::process::ExitCode;

// The server allocates per request (parsed JSON, Redis replies, the answer); glibc's
// malloc and free were a quarter of `quiver serve`'s CPU under load (BENCHMARKS.md,
// online serving), mimalloc's thread-local free lists make them cheap.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiver_cli::main()
}
