// Reruns the build when a migration is added or changed: `sqlx::migrate!`
// embeds both stores' migrations.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=migrations-pg");
}
