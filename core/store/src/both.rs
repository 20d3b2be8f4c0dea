//! Runs one store test on each store: SQLite in memory and a fresh
//! database on the test PostgreSQL server (see `pg::test_server`), so the
//! two implementations are held to the same tests.
//!
//! Write the test as `async fn name(store: impl Trait + ...)` (or generic
//! over `S`) and list it in `on_both_stores!(name, ...)`: that makes
//! `name::sqlite` and `name::postgres`.

use crate::SqliteStore;
use crate::pg::PgStore;

/// A fresh SQLite store in memory.
pub(crate) async fn sqlite() -> SqliteStore {
    SqliteStore::open_in_memory().await.unwrap()
}

/// A fresh PostgreSQL store: a new database on the test server.
pub(crate) async fn postgres() -> PgStore {
    crate::pg::test_server::fresh_store().await
}

/// `on_both_stores!(a, b)`: for each async test body `a(store)`, the
/// tests `a::sqlite` and `a::postgres`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(crate::both::sqlite().await).await
                }
                #[tokio::test]
                async fn postgres() {
                    super::$name(crate::both::postgres().await).await
                }
            }
        )*
    };
}
pub(crate) use on_both_stores;
