//! `/schemas/…`: schemas by their global id, which is what a consumer decoding a message has.

use axum::extract::State;
use serde::Serialize;

use crate::registry::{self, Registry};
use crate::schema::{AVRO, Reference};
use crate::store::StoredSchema;

use super::error::ApiError;
use super::wire::{Params, RawJson, Reply, Segments};

/// A schema as `GET /schemas/ids/{id}` returns it.
#[derive(Debug, Serialize)]
pub(crate) struct SchemaReply {
    /// Omitted for Avro, as Confluent does.
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    schema_type: Option<String>,
    /// Omitted when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    references: Vec<Reference>,
    /// The schema text.
    schema: String,
}

/// The `schemaType` to show for a stored schema: none for Avro.
pub(crate) fn shown_type(schema: &StoredSchema) -> Option<String> {
    (schema.schema_type != AVRO).then(|| schema.schema_type.clone())
}

/// A subject and version a schema is registered under.
#[derive(Debug, Serialize)]
pub(crate) struct SubjectVersion {
    subject: String,
    version: i64,
}

/// `GET /schemas/types`.
pub(crate) async fn types() -> Reply<[&'static str; 1]> {
    Reply([AVRO])
}

/// `GET /schemas/ids/{id}`: the schema, soft-deleted or not (`deleted` is ignored).
pub(crate) async fn by_id(
    State(registry): State<Registry>,
    Segments(id): Segments<String>,
) -> Result<Reply<SchemaReply>, ApiError> {
    let schema = registry.schema_by_id(parse_id(&id)?).await?;
    Ok(Reply(SchemaReply {
        schema_type: shown_type(&schema),
        references: schema.references,
        schema: schema.text,
    }))
}

/// `GET /schemas/ids/{id}/schema`: the schema text itself.
pub(crate) async fn text_by_id(
    State(registry): State<Registry>,
    Segments(id): Segments<String>,
) -> Result<RawJson<String>, ApiError> {
    Ok(RawJson(registry.schema_by_id(parse_id(&id)?).await?.text))
}

/// `GET /schemas/ids/{id}/versions`: where the schema is registered.
pub(crate) async fn versions_by_id(
    State(registry): State<Registry>,
    Segments(id): Segments<String>,
    params: Params,
) -> Result<Reply<Vec<SubjectVersion>>, ApiError> {
    let usages = registry
        .usages(parse_id(&id)?, params.flag("deleted"))
        .await?;
    Ok(Reply(
        usages
            .into_iter()
            .map(|usage| SubjectVersion {
                subject: usage.subject,
                version: usage.version,
            })
            .collect(),
    ))
}

/// `GET /schemas/ids/{id}/subjects`: the subjects the schema is registered under.
pub(crate) async fn subjects_by_id(
    State(registry): State<Registry>,
    Segments(id): Segments<String>,
    params: Params,
) -> Result<Reply<Vec<String>>, ApiError> {
    let usages = registry
        .usages(parse_id(&id)?, params.flag("deleted"))
        .await?;
    let mut subjects: Vec<String> = usages.into_iter().map(|usage| usage.subject).collect();
    subjects.dedup();
    Ok(Reply(subjects))
}

/// An id from the path; one that is not a number names no schema.
fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::Registry(registry::Error::SchemaNotFound))
}
