//! Test support: every test gets its own database, on either engine.
//!
//! SQLite: a file in a fresh temporary directory. PostgreSQL: a randomly named database on the
//! server named by `JOBLINE_TEST_PG_URL` (default: the local server of DEVELOPERS.md,
//! `postgres://postgres@127.0.0.1:5432/test`), created for the test and dropped when the guard
//! goes out of scope. Nothing is mocked.

use jobline_core::{Clock, FakeClock};
use jobline_store::{Backend, Store, StoreConfig};
use std::path::PathBuf;
use std::sync::{Arc, Once};

pub use jobline_store::Backend as Engine;

/// The PostgreSQL server tests use.
pub fn pg_admin_url() -> String {
    std::env::var("JOBLINE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Turns on logs when `TEST_LOG=1` (silent otherwise).
pub fn init_test_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,sqlx=warn".into()),
                )
                .with_test_writer()
                .try_init();
        }
    });
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    /// The URL to connect to it.
    pub url: String,
    /// Which engine it is.
    pub backend: Backend,
    pg_name: Option<String>,
    _dir: Option<TempDir>,
}

impl TestDb {
    /// Creates an empty database on `backend`.
    pub async fn new(backend: Backend) -> Self {
        init_test_logs();
        match backend {
            Backend::Sqlite => {
                let dir = TempDir::new();
                let url = format!("sqlite:{}", dir.0.join("jobline.db").display());
                TestDb { url, backend, pg_name: None, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let name = format!("jobline_t_{}", uuid::Uuid::new_v4().simple());
                let admin = pg_admin_url();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "cannot reach PostgreSQL at {admin} ({e}); start it with \
                             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
                        )
                    });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let url = replace_db_name(&admin, &name);
                TestDb { url, backend, pg_name: Some(name), _dir: None }
            }
        }
    }

    /// A store on this database with the given clock, migrated.
    pub async fn store_with_clock(&self, clock: Arc<dyn Clock>) -> Store {
        Store::connect(&StoreConfig::new(&self.url), clock).await.expect("connect to test database")
    }

    /// A store on this database with a [`FakeClock`], returned too so the test can move time.
    pub async fn store(&self) -> (Store, FakeClock) {
        let clock = FakeClock::at_default();
        (self.store_with_clock(Arc::new(clock.clone())).await, clock)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = pg_admin_url();
            // Drop needs async I/O; run it on a small runtime of its own, on its own thread, so it
            // works whether or not the test's runtime is still alive.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        if let Ok(mut conn) =
                            <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                        {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut conn)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if base[..i].contains("//") && i > base.find("//").unwrap_or(0) + 1 => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new() -> Self {
        let path = std::env::temp_dir().join(format!("jobline-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs each listed async test function once per engine: `mod sqlite { … } mod postgres { … }`.
/// Each function takes the [`Engine`] to run on.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Engine::Postgres).await
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::replace_db_name;

    #[test]
    fn database_name_is_replaced_in_urls() {
        assert_eq!(
            replace_db_name("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_db_name("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
