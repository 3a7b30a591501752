//! Why a registry operation did not happen, in Confluent's terms.

use crate::schema::SchemaError;

/// Why an operation did not happen, in Confluent's terms; each says what the caller can do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The subject has no (live) version: register one first, or ask with `deleted=true`.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// The subject exists but not with this version.
    #[error("Version {0} not found.")]
    VersionNotFound(i64),
    /// No schema has this id (or it is no longer registered anywhere).
    #[error("Schema {0} not found")]
    SchemaIdNotFound(i64),
    /// The schema looked up is not registered under the subject.
    #[error("Schema not found")]
    SchemaNotFound,
    /// The subject is already soft-deleted: delete it with `permanent=true`.
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// A permanent delete needs a soft delete first.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// The version is already soft-deleted: delete it with `permanent=true`.
    #[error("Subject '{0}' Version {1} was soft deleted. Set permanent=true to delete permanently")]
    VersionSoftDeleted(String, i64),
    /// A permanent delete needs a soft delete first.
    #[error("Subject '{0}' Version {1} was not deleted first before being permanently deleted")]
    VersionNotSoftDeleted(String, i64),
    /// The subject follows the global level: ask with `defaultToGlobal=true`.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    NoSubjectLevel(String),
    /// The schema breaks the subject's compatibility level: change the schema (or the level).
    #[error(
        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
        .messages.join("; ")
    )]
    Incompatible {
        /// The subject registered under.
        subject: String,
        /// One line per incompatibility.
        messages: Vec<String>,
    },
    /// The schema is not valid Avro, not Avro at all, or its references do not resolve.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Live schemas reference this version: delete those first.
    #[error("One or more references exist to the schema {{subject={0},version={1}}}.")]
    Referenced(String, i64),
    /// The database failed; retry once it is reachable.
    #[error("Error in the backend data store: {0}")]
    Storage(#[from] sqlx::Error),
    /// Stored data no longer makes sense (a stored schema that does not parse, an unknown
    /// stored level); an operator has to look.
    #[error("Inconsistent stored data: {0}")]
    Inconsistent(String),
}
