//! `sqlx::migrate!` embeds the SQL files at compile time but cannot tell Cargo to watch
//! them on stable Rust; without this a changed migration would not trigger a rebuild.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
