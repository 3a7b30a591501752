//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the files it finds,
//! but cargo only notices edits to files it already embedded.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
