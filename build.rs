//! Rebuilds when a migration is added: `sqlx::migrate!` embeds the `migrations/` folders at
//! compile time, and cargo does not otherwise know that a new file there changes the binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
