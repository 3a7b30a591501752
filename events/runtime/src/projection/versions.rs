//! The versions of a read model (migration `9005_projection.sql`, in the projection's main
//! database): where each one's tables are, which one is live, which one the query API
//! serves. Version 1 lives in the main database itself; version N > 1 in a database of its
//! own whose URL is derived from the main one ([`version_url`]), so that a rebuild never
//! touches the tables being served.

use std::fmt;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Connection, Row};

use super::Table;
use crate::db::{self, Db, Engine, Migrations};

/// Where a version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Being rebuilt from the topics; not served.
    Building,
    /// The version queries are answered from (once the query API has switched to it).
    Live,
    /// Replaced by a newer version; kept, and following nothing, until dropped.
    Retired,
    /// Its tables are gone.
    Dropped,
}

impl VersionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Building => "building",
            VersionState::Live => "live",
            VersionState::Retired => "retired",
            VersionState::Dropped => "dropped",
        }
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "building" => VersionState::Building,
            "live" => VersionState::Live,
            "retired" => VersionState::Retired,
            "dropped" => VersionState::Dropped,
            other => bail!("unknown version state {other:?}"),
        })
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One version of a read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The read model's name.
    pub projection: String,
    /// 1, 2, …
    pub number: i64,
    /// Where its tables and consumer offsets are.
    pub database_url: String,
    /// Where it stands.
    pub state: VersionState,
    /// Where its rebuild started reading (None: from the beginning of the topics).
    pub from: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was made live, if ever.
    pub promoted_at: Option<DateTime<Utc>>,
}

impl Version {
    /// The consumer group that keeps it: the read model's name for version 1,
    /// `<name>.v<N>` for later ones.
    pub fn group(&self) -> String {
        group(&self.projection, self.number)
    }
}

/// The consumer group of version `number` of `projection`.
pub fn group(projection: &str, number: i64) -> String {
    if number == 1 {
        projection.to_owned()
    } else {
        format!("{projection}.v{number}")
    }
}

const COLUMNS: &str =
    "projection, version, database_url, state, from_millis, created_at, promoted_at";

fn millis(value: i64) -> anyhow::Result<DateTime<Utc>> {
    eventmart_events::timestamp::from_millis(value)
        .with_context(|| format!("{value} is not a timestamp"))
}

fn decode(row: &AnyRow) -> anyhow::Result<Version> {
    let state: String = row.try_get("state")?;
    Ok(Version {
        projection: row.try_get("projection")?,
        number: row.try_get("version")?,
        database_url: row.try_get("database_url")?,
        state: VersionState::parse(&state)?,
        from: row
            .try_get::<Option<i64>, _>("from_millis")?
            .map(millis)
            .transpose()?,
        created_at: millis(row.try_get("created_at")?)?,
        promoted_at: row
            .try_get::<Option<i64>, _>("promoted_at")?
            .map(millis)
            .transpose()?,
    })
}

/// Records version 1 of `projection`, live in `main_url`, unless it has versions already.
pub async fn ensure_first(pool: &AnyPool, projection: &str, main_url: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO projection_versions \
         (projection, version, database_url, state, from_millis, created_at, promoted_at) \
         VALUES ($1, 1, $2, 'live', NULL, $3, $3) ON CONFLICT (projection, version) DO NOTHING",
    )
    .bind(projection)
    .bind(main_url)
    .bind(Utc::now().timestamp_millis())
    .execute(pool)
    .await?;
    Ok(())
}

/// Every version of `projection`, oldest first.
pub async fn list(pool: &AnyPool, projection: &str) -> anyhow::Result<Vec<Version>> {
    let sql =
        format!("SELECT {COLUMNS} FROM projection_versions WHERE projection = $1 ORDER BY version");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(projection)
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode).collect()
}

/// Version `number` of `projection`.
pub async fn get(pool: &AnyPool, projection: &str, number: i64) -> anyhow::Result<Version> {
    list(pool, projection)
        .await?
        .into_iter()
        .find(|v| v.number == number)
        .with_context(|| format!("{projection} has no version {number}"))
}

/// The live version of `projection`.
pub async fn live(pool: &AnyPool, projection: &str) -> anyhow::Result<Version> {
    list(pool, projection)
        .await?
        .into_iter()
        .find(|v| v.state == VersionState::Live)
        .with_context(|| format!("{projection} has no live version"))
}

/// The version of `projection` being rebuilt, if any.
pub async fn building(pool: &AnyPool, projection: &str) -> anyhow::Result<Option<Version>> {
    Ok(list(pool, projection)
        .await?
        .into_iter()
        .find(|v| v.state == VersionState::Building))
}

/// Records a new version of `projection`, building, in a database of its own derived from
/// `main_url`, and creates that database (empty).
pub async fn begin(
    pool: &AnyPool,
    projection: &str,
    main_url: &str,
    from: Option<DateTime<Utc>>,
) -> anyhow::Result<Version> {
    let number = list(pool, projection)
        .await?
        .iter()
        .map(|v| v.number)
        .max()
        .unwrap_or(1)
        + 1;
    let url = version_url(main_url, number)?;
    create_database(main_url, &url).await?;
    sqlx::query(
        "INSERT INTO projection_versions \
         (projection, version, database_url, state, from_millis, created_at, promoted_at) \
         VALUES ($1, $2, $3, 'building', $4, $5, NULL)",
    )
    .bind(projection)
    .bind(number)
    .bind(&url)
    .bind(from.map(|t| t.timestamp_millis()))
    .bind(Utc::now().timestamp_millis())
    .execute(pool)
    .await?;
    get(pool, projection, number).await
}

/// Makes version `number` live and the live one retired, in one transaction: the query API
/// switches to it (see [`super::serve`]) once it has caught up with the one it replaces.
pub async fn promote(pool: &AnyPool, projection: &str, number: i64) -> anyhow::Result<()> {
    let target = get(pool, projection, number).await?;
    if target.state == VersionState::Dropped {
        bail!("{projection} version {number} has been dropped; rebuild instead");
    }
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE projection_versions SET state = 'retired' \
         WHERE projection = $1 AND state = 'live' AND version <> $2",
    )
    .bind(projection)
    .bind(number)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE projection_versions SET state = 'live', promoted_at = $3 \
         WHERE projection = $1 AND version = $2",
    )
    .bind(projection)
    .bind(number)
    .bind(Utc::now().timestamp_millis())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Drops version `number` of `projection`: its database (version N > 1), or its tables and
/// consumer records in the main database (version 1). The live version cannot be dropped,
/// nor the one the query API serves unless `force` (for a read model that is not running).
pub async fn drop_version(
    pool: &AnyPool,
    projection: &str,
    number: i64,
    main_url: &str,
    tables: &[Table],
    force: bool,
) -> anyhow::Result<()> {
    let version = get(pool, projection, number).await?;
    match version.state {
        VersionState::Live => bail!(
            "{projection} version {number} is live; promote another version before dropping it"
        ),
        VersionState::Dropped => return Ok(()),
        VersionState::Building | VersionState::Retired => {}
    }
    if !force && served(pool, projection).await? == Some(number) {
        bail!(
            "the query API of {projection} still serves version {number}; wait until it has \
             switched to the live one (`eventmart projection list` shows which it serves), or \
             pass --force if it is not running"
        );
    }
    if version.database_url == main_url {
        let mut tx = pool.begin().await?;
        for table in tables {
            let sql = format!("DROP TABLE IF EXISTS {}", table.name);
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await?;
        }
        for table in ["consumer_offsets", "consumer_processed"] {
            let sql = format!("DELETE FROM {table} WHERE consumer_group = $1");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(version.group())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    } else {
        drop_database(main_url, &version.database_url).await?;
    }
    sqlx::query(
        "UPDATE projection_versions SET state = 'dropped' WHERE projection = $1 AND version = $2",
    )
    .bind(projection)
    .bind(number)
    .execute(pool)
    .await?;
    Ok(())
}

/// The version the running query API serves, if one has said so.
pub async fn served(pool: &AnyPool, projection: &str) -> anyhow::Result<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT version FROM projection_served WHERE projection = $1")
            .bind(projection)
            .fetch_optional(pool)
            .await?,
    )
}

/// Records that the query API now serves version `number`.
pub async fn mark_served(pool: &AnyPool, projection: &str, number: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO projection_served (projection, version, served_at) VALUES ($1, $2, $3) \
         ON CONFLICT (projection) DO UPDATE SET version = $2, served_at = $3",
    )
    .bind(projection)
    .bind(number)
    .bind(Utc::now().timestamp_millis())
    .execute(pool)
    .await?;
    Ok(())
}

/// The database of `version`: `main` itself (opened on `main_url`) for the version that
/// lives there, so that one pool writes it; else its own, opened and migrated.
pub async fn open(
    main: &Db,
    main_url: &str,
    version: &Version,
    migrations: fn() -> Migrations,
) -> anyhow::Result<Db> {
    if version.state == VersionState::Dropped {
        bail!(
            "{} version {} has been dropped",
            version.projection,
            version.number
        );
    }
    if version.database_url == main_url {
        return Ok(main.clone());
    }
    db::connect_component(&version.database_url, migrations())
        .await
        .with_context(|| {
            format!(
                "opening {} version {}'s database",
                version.projection, version.number
            )
        })
}

/// The database URL of version `number` derived from the main one: `var/x.db` →
/// `var/x.v2.db` on SQLite, database `x` → `x_v2` on PostgreSQL (same server and options).
pub fn version_url(main_url: &str, number: i64) -> anyhow::Result<String> {
    let (path, query) = match main_url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (main_url, None),
    };
    let derived = match Engine::of(main_url)? {
        Engine::Sqlite => {
            if path.contains(":memory:") {
                bail!("an in-memory SQLite database cannot hold a second version");
            }
            match path.strip_suffix(".db") {
                Some(stem) => format!("{stem}.v{number}.db"),
                None => format!("{path}.v{number}"),
            }
        }
        Engine::Postgres => {
            let (server, name) = postgres_parts(path)?;
            format!("{server}/{name}_v{number}")
        }
    };
    Ok(match query {
        Some(query) => format!("{derived}?{query}"),
        None => derived,
    })
}

/// `postgres://…/name` split into the server part and the database name.
fn postgres_parts(path: &str) -> anyhow::Result<(&str, &str)> {
    let rest = path.split_once("://").map_or(path, |(_, rest)| rest);
    match rest.split_once('/') {
        Some((_, name)) if !name.is_empty() && !name.contains('/') => {
            let server = &path[..path.len() - name.len() - 1];
            Ok((server, name))
        }
        _ => bail!("{path:?} names no database; give DATABASE_URL as postgres://…/<database>"),
    }
}

/// A PostgreSQL identifier, quoted.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates database `url` on `main_url`'s server if it does not exist (SQLite creates its
/// file on first connection).
async fn create_database(main_url: &str, url: &str) -> anyhow::Result<()> {
    if Engine::of(url)? == Engine::Sqlite {
        return Ok(());
    }
    let (_, name) = postgres_parts(url.split('?').next().unwrap_or(url))?;
    let mut conn = sqlx::PgConnection::connect(main_url).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        let sql = format!("CREATE DATABASE {}", quoted(name));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// Removes database `url`: the SQLite file with its write-ahead log, or the PostgreSQL
/// database (closing its connections).
async fn drop_database(main_url: &str, url: &str) -> anyhow::Result<()> {
    let path = url.split('?').next().unwrap_or(url);
    match Engine::of(url)? {
        Engine::Sqlite => {
            let file = path
                .strip_prefix("sqlite://")
                .or_else(|| path.strip_prefix("sqlite:"))
                .unwrap_or(path);
            for suffix in ["", "-wal", "-shm"] {
                let name = format!("{file}{suffix}");
                match std::fs::remove_file(&name) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("removing {name}")),
                }
            }
        }
        Engine::Postgres => {
            let (_, name) = postgres_parts(path)?;
            let mut conn = sqlx::PgConnection::connect(main_url).await?;
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quoted(name));
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_version_lives_beside_the_main_database() {
        let cases = [
            (
                "sqlite://var/order-view.db",
                "sqlite://var/order-view.v2.db",
            ),
            (
                "sqlite:///tmp/x/test.db?mode=rwc",
                "sqlite:///tmp/x/test.v2.db?mode=rwc",
            ),
            ("sqlite://data/sales", "sqlite://data/sales.v2"),
            (
                "postgres://postgres@127.0.0.1:5432/order_view",
                "postgres://postgres@127.0.0.1:5432/order_view_v2",
            ),
            (
                "postgresql://u:p@db/sales?sslmode=require",
                "postgresql://u:p@db/sales_v2?sslmode=require",
            ),
        ];
        for (main, expected) in cases {
            assert_eq!(version_url(main, 2).unwrap(), expected, "{main}");
        }
    }

    #[test]
    fn a_main_database_without_a_name_or_in_memory_is_refused() {
        assert!(version_url("postgres://127.0.0.1:5432", 2).is_err());
        assert!(version_url("postgres://127.0.0.1:5432/", 2).is_err());
        assert!(version_url("sqlite::memory:", 2).is_err());
    }

    async fn neither_the_live_version_nor_the_served_one_is_dropped_without_force(
        engine: Engine,
    ) -> anyhow::Result<()> {
        let database = crate::testing::TestDatabase::create(engine).await?;
        let db = crate::db::connect(&database.url, &crate::db::runtime_migrations()).await?;
        let tables = [Table {
            name: "things",
            key: &["id"],
            ignore: &[],
        }];
        ensure_first(&db.pool, "things", &database.url).await?;
        mark_served(&db.pool, "things", 1).await?;
        let two = begin(&db.pool, "things", &database.url, None).await?;
        assert_eq!((two.number, two.state), (2, VersionState::Building));
        promote(&db.pool, "things", 2).await?;
        assert_eq!(live(&db.pool, "things").await?.number, 2);
        // Live: refused, even with force.
        let live_drop = drop_version(&db.pool, "things", 2, &database.url, &tables, true).await;
        assert!(live_drop.unwrap_err().to_string().contains("is live"));
        // Retired but still served (the query API has not switched yet): refused unless forced.
        let served_drop = drop_version(&db.pool, "things", 1, &database.url, &tables, false).await;
        assert!(
            served_drop
                .unwrap_err()
                .to_string()
                .contains("still serves")
        );
        assert_eq!(
            get(&db.pool, "things", 1).await?.state,
            VersionState::Retired
        );
        mark_served(&db.pool, "things", 2).await?;
        drop_version(&db.pool, "things", 1, &database.url, &tables, false).await?;
        assert_eq!(
            get(&db.pool, "things", 1).await?.state,
            VersionState::Dropped
        );
        drop_database(&database.url, &two.database_url).await?;
        Ok(())
    }

    crate::on_both_engines!(neither_the_live_version_nor_the_served_one_is_dropped_without_force);

    #[test]
    fn version_one_keeps_the_read_models_own_group() {
        assert_eq!(group("order-view", 1), "order-view");
        assert_eq!(group("order-view", 3), "order-view.v3");
    }
}
