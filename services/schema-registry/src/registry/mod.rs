//! The registry's operations, with Confluent's rules: what a version is, when a schema gets a
//! new id or version, which earlier versions a new one is checked against, what may be deleted.
//!
//! Reads run on any pooled connection. Writes run one at a time, each in one database
//! transaction, so that "find, check, then insert" cannot interleave with another writer: an
//! identical schema registered twice at once must get one id, and a subject's next version
//! number must go to one schema. One at a time means across processes, not only within one:
//! on PostgreSQL several instances may share a database, so a write first takes a lock of the
//! database's own (see [`store::lock_writes`]); the in-process lock in front of it keeps a
//! burst of writes from parking every pooled connection on that lock. A SQLite file has one
//! writer, whose pool holds a single connection, so the in-process lock is all there is.
//! HTTP is not this module's business: it returns [`Error`], which the API maps to status
//! and error codes.
//!
//! - `versions`: which versions a request sees and which one it names.
//! - `resolve`: schemas parsed with their references, for storing and for checks.
//! - `error`: what can go wrong, in Confluent's terms.

mod error;
mod resolve;
mod versions;

use std::sync::Arc;

use eventmart_runtime::db::Db;
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use crate::compat::{self, CompatibilityLevel};
use crate::metrics::{Outcome, RegistryMetrics};
use crate::schema::{AVRO, Reference};
use crate::store::{self, StoredSchema, Usage};

pub(crate) use self::error::Error;
use self::resolve::{find, incompatibilities, parse_input, refuse_if_referenced, stored};
pub(crate) use self::versions::VersionSpec;
use self::versions::{select, visible};

/// A schema as a request supplies it.
#[derive(Debug, Clone)]
pub(crate) struct SchemaInput {
    /// The schema text (JSON).
    pub(crate) schema: String,
    /// `AVRO` or absent.
    pub(crate) schema_type: Option<String>,
    /// Types it takes from other subjects.
    pub(crate) references: Vec<Reference>,
}

/// A version of a subject with its schema.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    /// The subject.
    pub(crate) subject: String,
    /// The version.
    pub(crate) version: i64,
    /// The schema registered as that version.
    pub(crate) schema: StoredSchema,
}

/// The registry: storage, the write lock, the level in force until one is set, and what it
/// counts.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    db: Db,
    writes: Arc<Mutex<()>>,
    default_level: CompatibilityLevel,
    metrics: RegistryMetrics,
}

/// A write in progress: the in-process lock and the transaction, which on PostgreSQL holds
/// the database's write lock until it commits or is dropped (rolled back).
type Write<'a> = (MutexGuard<'a, ()>, Transaction<'static, Any>);

impl Registry {
    /// A registry over an open, migrated database.
    pub(crate) fn new(db: Db, default_level: CompatibilityLevel, metrics: RegistryMetrics) -> Self {
        Self {
            db,
            writes: Arc::new(Mutex::new(())),
            default_level,
            metrics,
        }
    }

    /// Waits for this process's turn, then for the database's, and opens the transaction of
    /// one write. Every read of the write happens after both, so it sees what the previous
    /// writer (of any instance) committed: at PostgreSQL's default isolation, READ COMMITTED,
    /// each statement reads what was committed when it started.
    async fn begin_write(&self) -> Result<Write<'_>, Error> {
        let local = self.writes.lock().await;
        let mut tx = self.db.pool.begin().await?;
        store::lock_writes(&mut tx, self.db.engine).await?;
        Ok((local, tx))
    }

    /// The schema with `id`, while any version (even soft-deleted) is registered with it.
    pub(crate) async fn schema_by_id(&self, id: i64) -> Result<StoredSchema, Error> {
        let mut conn = self.db.pool.acquire().await?;
        if store::usages(&mut conn, id).await?.is_empty() {
            return Err(Error::SchemaIdNotFound(id));
        }
        store::schema(&mut conn, id)
            .await?
            .ok_or(Error::SchemaIdNotFound(id))
    }

    /// The subjects and versions registered with schema `id`.
    pub(crate) async fn usages(&self, id: i64, include_deleted: bool) -> Result<Vec<Usage>, Error> {
        let mut conn = self.db.pool.acquire().await?;
        let usages = store::usages(&mut conn, id).await?;
        if usages.is_empty() {
            return Err(Error::SchemaIdNotFound(id));
        }
        Ok(usages
            .into_iter()
            .filter(|usage| include_deleted || !usage.deleted)
            .collect())
    }

    /// The subjects, sorted, optionally only those starting with `prefix`.
    pub(crate) async fn subjects(
        &self,
        include_deleted: bool,
        prefix: Option<&str>,
    ) -> Result<Vec<String>, Error> {
        let mut conn = self.db.pool.acquire().await?;
        let mut subjects = store::subjects(&mut conn, include_deleted).await?;
        if let Some(prefix) = prefix {
            subjects.retain(|subject| subject.starts_with(prefix));
        }
        Ok(subjects)
    }

    /// The version numbers of `subject`, oldest first.
    pub(crate) async fn versions(
        &self,
        subject: &str,
        include_deleted: bool,
    ) -> Result<Vec<i64>, Error> {
        let mut conn = self.db.pool.acquire().await?;
        let rows = visible(&store::versions(&mut conn, subject).await?, include_deleted);
        if rows.is_empty() {
            return Err(Error::SubjectNotFound(subject.to_owned()));
        }
        Ok(rows.iter().map(|row| row.version).collect())
    }

    /// One version of `subject` with its schema.
    pub(crate) async fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<Registered, Error> {
        let mut conn = self.db.pool.acquire().await?;
        let rows = store::versions(&mut conn, subject).await?;
        let row = select(subject, &rows, spec, include_deleted)?;
        Ok(Registered {
            subject: subject.to_owned(),
            version: row.version,
            schema: stored(&mut conn, row.schema_id).await?,
        })
    }

    /// The ids of live schemas that reference a version of `subject`.
    pub(crate) async fn referenced_by(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<Vec<i64>, Error> {
        let mut conn = self.db.pool.acquire().await?;
        let rows = store::versions(&mut conn, subject).await?;
        let row = select(subject, &rows, spec, false)?;
        Ok(store::referencing_schemas(&mut conn, subject, row.version).await?)
    }

    /// Registers `input` under `subject` and returns its id.
    ///
    /// A schema already registered anywhere keeps its id; one that already is a live version
    /// of the subject gets no new version. Otherwise the subject's level decides whether it is
    /// compatible enough to become the next version.
    pub(crate) async fn register(&self, subject: &str, input: &SchemaInput) -> Result<i64, Error> {
        let registered = self.register_counted(subject, input).await;
        self.metrics.registration(match &registered {
            Ok((_, outcome)) => *outcome,
            Err(Error::Incompatible { .. }) => Outcome::Incompatible,
            Err(Error::Schema(_)) => Outcome::Invalid,
            Err(_) => Outcome::Failed,
        });
        registered.map(|(id, _)| id)
    }

    /// [`Registry::register`], also telling whether a new version was stored
    /// ([`Outcome::Registered`]) or the schema already was one ([`Outcome::Existing`]).
    async fn register_counted(
        &self,
        subject: &str,
        input: &SchemaInput,
    ) -> Result<(i64, Outcome), Error> {
        let (_writes, mut tx) = self.begin_write().await?;
        let parsed = parse_input(&mut tx, input).await?;
        let existing = find(&mut tx, &parsed, &input.references).await?;
        let rows = store::versions(&mut tx, subject).await?;
        let live = visible(&rows, false);
        if let Some(id) = existing
            && live.iter().any(|row| row.schema_id == id)
        {
            return Ok((id, Outcome::Existing));
        }
        let level = self.level_for(&mut tx, subject).await?;
        let targets = compat::versions_to_check(level, &live);
        let messages = incompatibilities(&mut tx, level, &parsed.resolved, targets).await?;
        if !messages.is_empty() {
            return Err(Error::Incompatible {
                subject: subject.to_owned(),
                messages,
            });
        }
        let id = match existing {
            Some(id) => id,
            None => {
                store::insert_schema(
                    &mut tx,
                    AVRO,
                    &parsed.canonical,
                    &parsed.fingerprint,
                    &input.references,
                )
                .await?
            }
        };
        // Soft-deleted versions keep their numbers; permanently deleted ones free theirs.
        let version = rows.last().map_or(0, |row| row.version) + 1;
        store::insert_version(&mut tx, subject, version, id).await?;
        tx.commit().await?;
        tracing::info!(subject, version, id, "registered a new schema version");
        Ok((id, Outcome::Registered))
    }

    /// The version of `subject` registered with the schema `input`, the latest if several.
    pub(crate) async fn lookup(
        &self,
        subject: &str,
        input: &SchemaInput,
        include_deleted: bool,
    ) -> Result<Registered, Error> {
        let mut conn = self.db.pool.acquire().await?;
        let rows = visible(&store::versions(&mut conn, subject).await?, include_deleted);
        if rows.is_empty() {
            return Err(Error::SubjectNotFound(subject.to_owned()));
        }
        let parsed = parse_input(&mut conn, input).await?;
        let id = find(&mut conn, &parsed, &input.references)
            .await?
            .ok_or(Error::SchemaNotFound)?;
        let row = rows
            .iter()
            .rev()
            .find(|row| row.schema_id == id)
            .ok_or(Error::SchemaNotFound)?;
        Ok(Registered {
            subject: subject.to_owned(),
            version: row.version,
            schema: stored(&mut conn, id).await?,
        })
    }

    /// Deletes every version of `subject`: softly, or for good once soft-deleted. Returns the
    /// versions deleted.
    pub(crate) async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<i64>, Error> {
        let (_writes, mut tx) = self.begin_write().await?;
        let rows = store::versions(&mut tx, subject).await?;
        if rows.is_empty() {
            return Err(Error::SubjectNotFound(subject.to_owned()));
        }
        let live = visible(&rows, false);
        let deleted = if permanent {
            if !live.is_empty() {
                return Err(Error::SubjectNotSoftDeleted(subject.to_owned()));
            }
            store::remove_subject(&mut tx, subject).await?;
            store::remove_subject_level(&mut tx, subject).await?;
            rows
        } else {
            if live.is_empty() {
                return Err(Error::SubjectSoftDeleted(subject.to_owned()));
            }
            for row in &live {
                refuse_if_referenced(&mut tx, subject, row.version).await?;
            }
            store::soft_delete_subject(&mut tx, subject).await?;
            live
        };
        tx.commit().await?;
        tracing::info!(subject, permanent, "deleted a subject");
        Ok(deleted.iter().map(|row| row.version).collect())
    }

    /// Deletes one version of `subject`: softly, or for good once soft-deleted. Returns it.
    pub(crate) async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<i64, Error> {
        let (_writes, mut tx) = self.begin_write().await?;
        let rows = store::versions(&mut tx, subject).await?;
        if rows.is_empty() {
            return Err(Error::SubjectNotFound(subject.to_owned()));
        }
        let row = match spec {
            // The latest of a permanent delete may be soft-deleted; of a soft one, it is live.
            VersionSpec::Latest => select(subject, &rows, spec, permanent)?,
            VersionSpec::Number(number) => rows
                .iter()
                .find(|row| row.version == number)
                .copied()
                .ok_or(Error::VersionNotFound(number))?,
        };
        if permanent {
            if !row.deleted {
                return Err(Error::VersionNotSoftDeleted(
                    subject.to_owned(),
                    row.version,
                ));
            }
            store::remove_version(&mut tx, subject, row.version).await?;
        } else {
            if row.deleted {
                return Err(Error::VersionSoftDeleted(subject.to_owned(), row.version));
            }
            refuse_if_referenced(&mut tx, subject, row.version).await?;
            store::soft_delete_version(&mut tx, subject, row.version).await?;
        }
        tx.commit().await?;
        tracing::info!(
            subject,
            version = row.version,
            permanent,
            "deleted a version"
        );
        Ok(row.version)
    }

    /// The incompatibilities of `input` with `subject`: with one version when `spec` names
    /// it, else with the versions the subject's level requires. Empty when compatible.
    pub(crate) async fn check(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        input: &SchemaInput,
    ) -> Result<Vec<String>, Error> {
        let mut conn = self.db.pool.acquire().await?;
        let parsed = parse_input(&mut conn, input).await?;
        let rows = store::versions(&mut conn, subject).await?;
        let level = self.level_for(&mut conn, subject).await?;
        let targets = match spec {
            None => compat::versions_to_check(level, &visible(&rows, false)).to_vec(),
            Some(spec) => {
                let row = select(subject, &rows, spec, false)?;
                compat::versions_to_check(level, &[row]).to_vec()
            }
        };
        incompatibilities(&mut conn, level, &parsed.resolved, &targets).await
    }

    /// The global level: as set, or the configured default.
    pub(crate) async fn global_level(&self) -> Result<CompatibilityLevel, Error> {
        let mut conn = self.db.pool.acquire().await?;
        self.global_level_on(&mut conn).await
    }

    /// Sets the global level.
    pub(crate) async fn set_global_level(&self, level: CompatibilityLevel) -> Result<(), Error> {
        let (_writes, mut tx) = self.begin_write().await?;
        store::set_global_level(&mut tx, level.as_str()).await?;
        tx.commit().await?;
        tracing::info!(%level, "set the global compatibility level");
        Ok(())
    }

    /// The level of `subject`: its own, or with `default_to_global` the global one.
    pub(crate) async fn subject_level(
        &self,
        subject: &str,
        default_to_global: bool,
    ) -> Result<CompatibilityLevel, Error> {
        let mut conn = self.db.pool.acquire().await?;
        match store::subject_level(&mut conn, subject).await? {
            Some(level) => stored_level(&level),
            None if default_to_global => self.global_level_on(&mut conn).await,
            None => Err(Error::NoSubjectLevel(subject.to_owned())),
        }
    }

    /// Sets the level of `subject` (which need not exist yet).
    pub(crate) async fn set_subject_level(
        &self,
        subject: &str,
        level: CompatibilityLevel,
    ) -> Result<(), Error> {
        let (_writes, mut tx) = self.begin_write().await?;
        store::set_subject_level(&mut tx, subject, level.as_str()).await?;
        tx.commit().await?;
        tracing::info!(subject, %level, "set a subject's compatibility level");
        Ok(())
    }

    /// Removes the level of `subject`, returning it.
    pub(crate) async fn delete_subject_level(
        &self,
        subject: &str,
    ) -> Result<CompatibilityLevel, Error> {
        let (_writes, mut tx) = self.begin_write().await?;
        let Some(previous) = store::subject_level(&mut tx, subject).await? else {
            return Err(Error::SubjectNotFound(subject.to_owned()));
        };
        store::remove_subject_level(&mut tx, subject).await?;
        tx.commit().await?;
        tracing::info!(subject, "removed a subject's compatibility level");
        stored_level(&previous)
    }

    async fn level_for(
        &self,
        conn: &mut AnyConnection,
        subject: &str,
    ) -> Result<CompatibilityLevel, Error> {
        match store::subject_level(conn, subject).await? {
            Some(level) => stored_level(&level),
            None => self.global_level_on(conn).await,
        }
    }

    async fn global_level_on(&self, conn: &mut AnyConnection) -> Result<CompatibilityLevel, Error> {
        match store::global_level(conn).await? {
            Some(level) => stored_level(&level),
            None => Ok(self.default_level),
        }
    }
}

/// A level read back from storage, where only valid names are ever written.
fn stored_level(text: &str) -> Result<CompatibilityLevel, Error> {
    text.parse()
        .map_err(|error: compat::InvalidLevel| Error::Inconsistent(error.to_string()))
}
