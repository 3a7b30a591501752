//! The SQL behind the registry, one statement per function, for SQLite and PostgreSQL alike.
//!
//! Every function takes the connection to run on, so that a caller can put several in one
//! transaction. Nothing here decides anything: which versions count, what is allowed and in
//! what order things happen is the registry's business. Rows are returned in an order that
//! does not depend on the engine's collation.

use eventmart_runtime::db::Engine;
use sqlx::AnyConnection;

use crate::schema::Reference;

/// A schema as stored: it keeps its id forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredSchema {
    /// The global id.
    pub(crate) id: i64,
    /// `AVRO`.
    pub(crate) schema_type: String,
    /// The canonical text.
    pub(crate) text: String,
    /// The types it takes from other subjects, in the order registered.
    pub(crate) references: Vec<Reference>,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionRow {
    /// The version number, from 1.
    pub(crate) version: i64,
    /// The id of its schema.
    pub(crate) schema_id: i64,
    /// Whether it was soft-deleted.
    pub(crate) deleted: bool,
}

/// A subject and version that a schema id is registered under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Usage {
    /// The subject.
    pub(crate) subject: String,
    /// The version.
    pub(crate) version: i64,
    /// Whether that version was soft-deleted.
    pub(crate) deleted: bool,
}

/// The schema with `id`, if one was ever registered.
pub(crate) async fn schema(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<StoredSchema>, sqlx::Error> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT schema_type, schema_text FROM schemas WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((schema_type, text)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredSchema {
        id,
        schema_type,
        text,
        references: references(conn, id).await?,
    }))
}

async fn references(conn: &mut AnyConnection, id: i64) -> Result<Vec<Reference>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT name, subject, version FROM schema_references \
         WHERE schema_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, subject, version)| Reference {
            name,
            subject,
            version,
        })
        .collect())
}

/// The id of the schema with exactly this canonical text and these references, if any.
pub(crate) async fn find_schema(
    conn: &mut AnyConnection,
    schema_type: &str,
    text: &str,
    fingerprint: &str,
    wanted: &[Reference],
) -> Result<Option<i64>, sqlx::Error> {
    let candidates: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM schemas \
         WHERE fingerprint = $1 AND schema_type = $2 AND schema_text = $3 ORDER BY id",
    )
    .bind(fingerprint)
    .bind(schema_type)
    .bind(text)
    .fetch_all(&mut *conn)
    .await?;
    for id in candidates {
        if references(conn, id).await? == wanted {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Stores a new schema and returns its freshly assigned id.
pub(crate) async fn insert_schema(
    conn: &mut AnyConnection,
    schema_type: &str,
    text: &str,
    fingerprint: &str,
    references: &[Reference],
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO schemas (schema_type, schema_text, fingerprint) \
         VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(schema_type)
    .bind(text)
    .bind(fingerprint)
    .fetch_one(&mut *conn)
    .await?;
    for (position, reference) in (0_i64..).zip(references) {
        sqlx::query(
            "INSERT INTO schema_references (schema_id, position, name, subject, version) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(position)
        .bind(&reference.name)
        .bind(&reference.subject)
        .bind(reference.version)
        .execute(&mut *conn)
        .await?;
    }
    Ok(id)
}

/// Every version of `subject` still stored (soft-deleted ones included), oldest first.
pub(crate) async fn versions(
    conn: &mut AnyConnection,
    subject: &str,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT version, schema_id, deleted FROM subject_versions \
         WHERE subject = $1 ORDER BY version",
    )
    .bind(subject)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(version, schema_id, deleted)| VersionRow {
            version,
            schema_id,
            deleted: deleted != 0,
        })
        .collect())
}

/// The schema registered as `version` of `subject`, soft-deleted or not.
pub(crate) async fn schema_at(
    conn: &mut AnyConnection,
    subject: &str,
    version: i64,
) -> Result<Option<StoredSchema>, sqlx::Error> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT schema_id FROM subject_versions WHERE subject = $1 AND version = $2",
    )
    .bind(subject)
    .bind(version)
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(id) => schema(conn, id).await,
        None => Ok(None),
    }
}

/// Adds `version` of `subject`, registered with schema `schema_id`.
pub(crate) async fn insert_version(
    conn: &mut AnyConnection,
    subject: &str,
    version: i64,
    schema_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO subject_versions (subject, version, schema_id, deleted) \
         VALUES ($1, $2, $3, 0)",
    )
    .bind(subject)
    .bind(version)
    .bind(schema_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Soft-deletes one version.
pub(crate) async fn soft_delete_version(
    conn: &mut AnyConnection,
    subject: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE subject_versions SET deleted = 1 WHERE subject = $1 AND version = $2")
        .bind(subject)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Soft-deletes every version of a subject.
pub(crate) async fn soft_delete_subject(
    conn: &mut AnyConnection,
    subject: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE subject_versions SET deleted = 1 WHERE subject = $1")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes one version for good (its schema stays, keeping its id taken).
pub(crate) async fn remove_version(
    conn: &mut AnyConnection,
    subject: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM subject_versions WHERE subject = $1 AND version = $2")
        .bind(subject)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes every version of a subject for good.
pub(crate) async fn remove_subject(
    conn: &mut AnyConnection,
    subject: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM subject_versions WHERE subject = $1")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every subject with a stored version, sorted; with `include_deleted`, also subjects whose
/// versions are all soft-deleted.
pub(crate) async fn subjects(
    conn: &mut AnyConnection,
    include_deleted: bool,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = if include_deleted {
        "SELECT DISTINCT subject FROM subject_versions"
    } else {
        "SELECT DISTINCT subject FROM subject_versions WHERE deleted = 0"
    };
    let mut subjects: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut *conn).await?;
    subjects.sort();
    Ok(subjects)
}

/// Where schema `id` is registered, by subject then version.
pub(crate) async fn usages(conn: &mut AnyConnection, id: i64) -> Result<Vec<Usage>, sqlx::Error> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT subject, version, deleted FROM subject_versions WHERE schema_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut usages: Vec<Usage> = rows
        .into_iter()
        .map(|(subject, version, deleted)| Usage {
            subject,
            version,
            deleted: deleted != 0,
        })
        .collect();
    usages.sort_by(|a, b| (&a.subject, a.version).cmp(&(&b.subject, b.version)));
    Ok(usages)
}

/// The ids of schemas registered under a live version that reference `subject` `version`.
pub(crate) async fn referencing_schemas(
    conn: &mut AnyConnection,
    subject: &str,
    version: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT r.schema_id FROM schema_references r \
         JOIN subject_versions v ON v.schema_id = r.schema_id AND v.deleted = 0 \
         WHERE r.subject = $1 AND r.version = $2 ORDER BY r.schema_id",
    )
    .bind(subject)
    .bind(version)
    .fetch_all(&mut *conn)
    .await
}

/// The global compatibility level as stored, if one was set.
pub(crate) async fn global_level(conn: &mut AnyConnection) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT compatibility FROM global_config WHERE singleton = 1")
        .fetch_optional(&mut *conn)
        .await
}

/// Sets the global compatibility level.
pub(crate) async fn set_global_level(
    conn: &mut AnyConnection,
    level: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO global_config (singleton, compatibility) VALUES (1, $1) \
         ON CONFLICT (singleton) DO UPDATE SET compatibility = excluded.compatibility",
    )
    .bind(level)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A subject's own compatibility level as stored, if it has one.
pub(crate) async fn subject_level(
    conn: &mut AnyConnection,
    subject: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT compatibility FROM subject_config WHERE subject = $1")
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await
}

/// Sets a subject's own compatibility level.
pub(crate) async fn set_subject_level(
    conn: &mut AnyConnection,
    subject: &str,
    level: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO subject_config (subject, compatibility) VALUES ($1, $2) \
         ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility",
    )
    .bind(subject)
    .bind(level)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes a subject's own compatibility level, so the global one applies again.
pub(crate) async fn remove_subject_level(
    conn: &mut AnyConnection,
    subject: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM subject_config WHERE subject = $1")
        .bind(subject)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The key of the PostgreSQL advisory lock that writers of one registry database take
/// ("schemas" in ASCII, then 1); advisory locks are per database, so other databases on the
/// server do not contend for it.
const WRITES_LOCK: i64 = 0x7363_6865_6d61_7301;

/// Makes every other writer of the database, in any process, wait until the transaction on
/// `conn` ends, so that what it reads next stays true until it commits.
///
/// On PostgreSQL a transaction-scoped advisory lock: released by commit or rollback, never
/// left behind by a process that dies. Waiting is simpler than what unique constraints would
/// need instead: a column holding a schema's whole identity (canonical text and references)
/// and a retry of the whole registration on every conflict. On SQLite nothing: a file has one
/// writer process, whose single connection already makes its writes take turns. The one
/// statement here that only one engine runs.
pub(crate) async fn lock_writes(
    conn: &mut AnyConnection,
    engine: Engine,
) -> Result<(), sqlx::Error> {
    if engine == Engine::Postgres {
        // Selected from, as the function returns `void`, which the `Any` driver cannot decode.
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(WRITES_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
