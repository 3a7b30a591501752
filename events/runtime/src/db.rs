//! Storage chosen by URL: `sqlite://…` for local runs, `postgres://…` in production.
//!
//! Every component that stores data goes through one code path: an [`sqlx::AnyPool`] plus a
//! pair of migration folders (`migrations/sqlite`, `migrations/postgres`), of which the one
//! matching the URL's scheme is applied. SQL written for both must use `$1` placeholders and
//! types both engines share (`BIGINT`, `TEXT`, `BOOLEAN`, `BYTEA`/`BLOB` via the migrations).

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, ConnectOptions};

/// The database engine behind a `DATABASE_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file (created if missing); the local default.
    Sqlite,
    /// A PostgreSQL database; production.
    Postgres,
}

/// A `DATABASE_URL` this runtime cannot use.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL's scheme is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("DATABASE_URL must start with sqlite:// or postgres://, got {0:?}")]
    UnsupportedUrl(String),
    /// The database could not be opened or migrated; retry once it is reachable.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed; the schema needs an operator's look.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Engine {
    /// What a read that locks its row appends (`SELECT … WHERE …{for_update}`): on
    /// PostgreSQL the row stays locked until the transaction ends, so that a concurrent
    /// change of the same row waits for this one; on SQLite nothing, as the transaction holds
    /// the pool's only connection, which serialises every writer anyway.
    pub fn for_update(self) -> &'static str {
        match self {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        }
    }

    /// Which engine a URL names.
    pub fn of(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }
}

/// The two migration sets of one component, one per engine.
#[derive(Debug)]
pub struct Migrations {
    /// Applied to SQLite databases.
    pub sqlite: Migrator,
    /// Applied to PostgreSQL databases.
    pub postgres: Migrator,
}

impl Migrations {
    /// No tables of the component's own: it keeps everything in the runtime's tables
    /// (journal, aggregate state, claims, timers).
    pub fn none() -> Self {
        Self {
            sqlite: Migrator::DEFAULT,
            postgres: Migrator::DEFAULT,
        }
    }
}

/// An open, migrated database.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool every query goes through.
    pub pool: AnyPool,
    /// The engine behind it, for the rare statement whose syntax differs.
    pub engine: Engine,
}

/// The runtime's own tables (journal and outbox, consumer offsets and dedup, idempotency
/// keys), which every service and projector database holds beside its own. Their migrations
/// are numbered from 9001 so that they never collide with a component's own (numbered from 1).
pub fn runtime_migrations() -> Migrations {
    let mut sqlite = sqlx::migrate!("./migrations/sqlite");
    let mut postgres = sqlx::migrate!("./migrations/postgres");
    // Each migrator sees the other's applied versions in the same table; that is expected.
    sqlite.set_ignore_missing(true);
    postgres.set_ignore_missing(true);
    Migrations { sqlite, postgres }
}

/// The placeholders of a multi-row `VALUES` list: `($1, $2), ($3, $4)` for 2 rows of width
/// 2, numbered from `$1`; the same text on both engines.
pub fn values_rows(rows: usize, width: usize) -> String {
    (0..rows)
        .map(|row| {
            let values: Vec<String> = (1..=width)
                .map(|i| format!("${}", row * width + i))
                .collect();
            format!("({})", values.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opens a service's or projector's database: the runtime's tables, then the component's own
/// `migrations`.
pub async fn connect_component(url: &str, mut migrations: Migrations) -> Result<Db, DbError> {
    let db = connect(url, &runtime_migrations()).await?;
    let migrator = match db.engine {
        Engine::Sqlite => &mut migrations.sqlite,
        Engine::Postgres => &mut migrations.postgres,
    };
    migrator.set_ignore_missing(true);
    migrator.run(&db.pool).await?;
    Ok(db)
}

/// Opens `url` (creating a SQLite file and its parent folder if missing) and applies
/// `migrations`.
pub async fn connect(url: &str, migrations: &Migrations) -> Result<Db, DbError> {
    sqlx::any::install_default_drivers();
    let engine = Engine::of(url)?;
    let url = match engine {
        Engine::Sqlite => sqlite_url(url),
        Engine::Postgres => url.to_owned(),
    };
    // SQLite allows one writer at a time; a single connection serialises writes in the pool
    // instead of failing them with SQLITE_BUSY.
    let connections = match engine {
        Engine::Sqlite => 1,
        Engine::Postgres => 10,
    };
    let pool = open_pool(&url, engine, connections, false).await?;
    let migrator = match engine {
        Engine::Sqlite => &migrations.sqlite,
        Engine::Postgres => &migrations.postgres,
    };
    migrator.run(&pool).await?;
    Ok(Db { pool, engine })
}

/// Opens `url` as it is, applying no migration: for tools that read a component's tables
/// beside it (a SQLite file that does not exist is created empty).
pub async fn open_as_is(url: &str) -> Result<Db, DbError> {
    let mut nothing = Migrations {
        sqlite: Migrator::DEFAULT,
        postgres: Migrator::DEFAULT,
    };
    nothing.sqlite.set_ignore_missing(true);
    nothing.postgres.set_ignore_missing(true);
    connect(url, &nothing).await
}

/// Connections of a SQLite pool for reads only: readers run beside the single writer.
const SQLITE_READERS: u32 = 4;

/// A pool for reads only on the database `db` was opened on at `url`: on SQLite, a pool of
/// its own of read-only connections (write-ahead logging lets them read beside the one writer
/// connection, so that queries never queue behind the projector or each other); on
/// PostgreSQL, `db` itself, whose pool already holds several connections.
pub async fn readers(db: &Db, url: &str) -> Result<Db, DbError> {
    match db.engine {
        Engine::Postgres => Ok(db.clone()),
        Engine::Sqlite => {
            let url = sqlite_url(url).replace("mode=rwc", "mode=ro");
            let pool = open_pool(&url, Engine::Sqlite, SQLITE_READERS, true).await?;
            Ok(Db {
                pool,
                engine: Engine::Sqlite,
            })
        }
    }
}

/// A pool of up to `connections` on `url`, each set up for `engine` (read-only ones skip the
/// pragmas that write).
async fn open_pool(
    url: &str,
    engine: Engine,
    connections: u32,
    read_only: bool,
) -> Result<sqlx::AnyPool, DbError> {
    let options = AnyConnectOptions::from_str(url)?
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    let pool = AnyPoolOptions::new()
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if engine == Engine::Sqlite {
                    // Write-ahead logging lets readers run beside the writer; NORMAL sync in
                    // WAL mode survives a process crash (an OS crash may lose the last commit).
                    let pragmas: &[&str] = if read_only {
                        &["PRAGMA busy_timeout = 10000"]
                    } else {
                        &[
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                        ]
                    };
                    for pragma in pragmas {
                        sqlx::raw_sql(*pragma).execute(&mut *conn).await?;
                    }
                }
                Ok(())
            })
        })
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Makes a SQLite URL create its file (and the file's folder) when missing; the pragmas a
/// local database needs are set on each connection instead, as URLs cannot carry them.
fn sqlite_url(url: &str) -> String {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    if let Some(parent) = std::path::Path::new(path)
        .parent()
        .filter(|_| !path.is_empty() && path != ":memory:")
    {
        // A failure here surfaces as a clear "unable to open database file" on connect.
        let _ = std::fs::create_dir_all(parent);
    }
    let mut url = url.to_owned();
    if !url.contains("mode=") {
        url.push_str(if url.contains('?') {
            "&mode=rwc"
        } else {
            "?mode=rwc"
        });
    }
    url
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_rows_number_every_value_once_row_after_row() {
        assert_eq!(super::values_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::values_rows(1, 1), "($1)");
    }

    use super::*;

    #[test]
    fn engine_is_chosen_by_scheme() {
        assert_eq!(Engine::of("sqlite://var/x.db").ok(), Some(Engine::Sqlite));
        assert_eq!(Engine::of("postgres://u@h/db").ok(), Some(Engine::Postgres));
        assert_eq!(
            Engine::of("postgresql://u@h/db").ok(),
            Some(Engine::Postgres)
        );
        assert!(matches!(
            Engine::of("mysql://h/db"),
            Err(DbError::UnsupportedUrl(_))
        ));
    }

    #[test]
    fn sqlite_files_are_created_unless_a_mode_is_given() {
        assert_eq!(sqlite_url("sqlite://x.db"), "sqlite://x.db?mode=rwc");
        assert_eq!(
            sqlite_url("sqlite://x.db?cache=shared"),
            "sqlite://x.db?cache=shared&mode=rwc"
        );
        assert_eq!(sqlite_url("sqlite://x.db?mode=ro"), "sqlite://x.db?mode=ro");
    }

    #[tokio::test]
    async fn a_sqlite_database_is_created_in_write_ahead_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/nested/a.db", dir.path().display());
        let migrations = Migrations {
            sqlite: Migrator::DEFAULT,
            postgres: Migrator::DEFAULT,
        };
        let db = connect(&url, &migrations).await.expect("opens");
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&db.pool)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
        assert!(dir.path().join("nested/a.db").exists());
    }
}
