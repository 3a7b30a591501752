//! `/subjects/…`: registering, reading, looking up and deleting the versions of a subject.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::registry::{Registered, Registry, SchemaInput};
use crate::schema::Reference;

use super::error::ApiError;
use super::schemas::shown_type;
use super::wire::{Body, Params, RawJson, Reply, Segments, version};

/// The body that registers, looks up or checks a schema. Other fields Confluent knows
/// (`metadata`, `ruleSet`, …) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SchemaBody {
    /// The schema text (JSON in a string).
    schema: String,
    /// `AVRO` when given.
    #[serde(default)]
    schema_type: Option<String>,
    /// Types taken from other subjects.
    #[serde(default)]
    references: Option<Vec<Reference>>,
}

impl From<SchemaBody> for SchemaInput {
    fn from(body: SchemaBody) -> Self {
        Self {
            schema: body.schema,
            schema_type: body.schema_type,
            references: body.references.unwrap_or_default(),
        }
    }
}

/// A version of a subject as Confluent returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionReply {
    subject: String,
    version: i64,
    id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    schema: String,
}

impl From<Registered> for VersionReply {
    fn from(registered: Registered) -> Self {
        Self {
            schema_type: shown_type(&registered.schema),
            subject: registered.subject,
            version: registered.version,
            id: registered.schema.id,
            references: registered.schema.references,
            schema: registered.schema.text,
        }
    }
}

/// The answer to a registration.
#[derive(Debug, Serialize)]
pub(crate) struct IdReply {
    id: i64,
}

/// `GET /subjects` (`deleted`, `subjectPrefix`).
pub(crate) async fn list(
    State(registry): State<Registry>,
    params: Params,
) -> Result<Reply<Vec<String>>, ApiError> {
    let subjects = registry
        .subjects(params.flag("deleted"), params.get("subjectPrefix"))
        .await?;
    Ok(Reply(subjects))
}

/// `GET /subjects/{subject}/versions` (`deleted`).
pub(crate) async fn versions(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
    params: Params,
) -> Result<Reply<Vec<i64>>, ApiError> {
    Ok(Reply(
        registry.versions(&subject, params.flag("deleted")).await?,
    ))
}

/// `POST /subjects/{subject}/versions`: registers a schema, answering its id.
pub(crate) async fn register(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
    Body(body): Body<SchemaBody>,
) -> Result<Reply<IdReply>, ApiError> {
    let id = registry.register(&subject, &body.into()).await?;
    Ok(Reply(IdReply { id }))
}

/// `POST /subjects/{subject}` (`deleted`): the version registered with a schema.
pub(crate) async fn lookup(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
    params: Params,
    Body(body): Body<SchemaBody>,
) -> Result<Reply<VersionReply>, ApiError> {
    let found = registry
        .lookup(&subject, &body.into(), params.flag("deleted"))
        .await?;
    Ok(Reply(found.into()))
}

/// `DELETE /subjects/{subject}` (`permanent`): answers the versions deleted.
pub(crate) async fn delete(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
    params: Params,
) -> Result<Reply<Vec<i64>>, ApiError> {
    let deleted = registry
        .delete_subject(&subject, params.flag("permanent"))
        .await?;
    Ok(Reply(deleted))
}

/// `GET /subjects/{subject}/versions/{version}` (`deleted`).
pub(crate) async fn version_of(
    State(registry): State<Registry>,
    Segments((subject, spec)): Segments<(String, String)>,
    params: Params,
) -> Result<Reply<VersionReply>, ApiError> {
    let found = registry
        .version(&subject, version(&spec)?, params.flag("deleted"))
        .await?;
    Ok(Reply(found.into()))
}

/// `GET /subjects/{subject}/versions/{version}/schema`: the schema text itself.
pub(crate) async fn schema_of(
    State(registry): State<Registry>,
    Segments((subject, spec)): Segments<(String, String)>,
    params: Params,
) -> Result<RawJson<String>, ApiError> {
    let found = registry
        .version(&subject, version(&spec)?, params.flag("deleted"))
        .await?;
    Ok(RawJson(found.schema.text))
}

/// `GET /subjects/{subject}/versions/{version}/referencedby`: ids of schemas using it.
pub(crate) async fn referenced_by(
    State(registry): State<Registry>,
    Segments((subject, spec)): Segments<(String, String)>,
) -> Result<Reply<Vec<i64>>, ApiError> {
    Ok(Reply(
        registry.referenced_by(&subject, version(&spec)?).await?,
    ))
}

/// `DELETE /subjects/{subject}/versions/{version}` (`permanent`): answers the version.
pub(crate) async fn delete_version(
    State(registry): State<Registry>,
    Segments((subject, spec)): Segments<(String, String)>,
    params: Params,
) -> Result<Reply<i64>, ApiError> {
    let deleted = registry
        .delete_version(&subject, version(&spec)?, params.flag("permanent"))
        .await?;
    Ok(Reply(deleted))
}
