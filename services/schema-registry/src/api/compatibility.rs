//! `/compatibility/…`: would a schema be accepted, and if not, why.

use axum::extract::State;
use serde::Serialize;

use crate::registry::Registry;

use super::error::ApiError;
use super::subjects::SchemaBody;
use super::wire::{Body, Params, Reply, Segments, version};

/// The answer to a compatibility check; `messages` only with `verbose=true`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckReply {
    is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<String>>,
}

impl CheckReply {
    fn new(messages: Vec<String>, params: &Params) -> Self {
        Self {
            is_compatible: messages.is_empty(),
            messages: params.flag("verbose").then_some(messages),
        }
    }
}

/// `POST /compatibility/subjects/{subject}/versions`: against the versions the subject's
/// level names; a subject without versions accepts anything.
pub(crate) async fn against_level(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
    params: Params,
    Body(body): Body<SchemaBody>,
) -> Result<Reply<CheckReply>, ApiError> {
    let messages = registry.check(&subject, None, &body.into()).await?;
    Ok(Reply(CheckReply::new(messages, &params)))
}

/// `POST /compatibility/subjects/{subject}/versions/{version}`: against that one version.
pub(crate) async fn against_version(
    State(registry): State<Registry>,
    Segments((subject, spec)): Segments<(String, String)>,
    params: Params,
    Body(body): Body<SchemaBody>,
) -> Result<Reply<CheckReply>, ApiError> {
    let spec = version(&spec)?;
    let messages = registry.check(&subject, Some(spec), &body.into()).await?;
    Ok(Reply(CheckReply::new(messages, &params)))
}
