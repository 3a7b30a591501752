//! `/config…` and `/mode…`: compatibility levels, globally and per subject, and the
//! (fixed) READWRITE mode.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;
use crate::registry::Registry;

use super::error::ApiError;
use super::wire::{Body, Params, Reply, Segments};

/// The body of `PUT /config…`.
#[derive(Debug, Deserialize)]
pub(crate) struct LevelBody {
    /// The level's name.
    #[serde(default)]
    compatibility: Option<String>,
}

impl LevelBody {
    fn level(&self) -> Result<CompatibilityLevel, ApiError> {
        let Some(name) = &self.compatibility else {
            return Err(ApiError::InvalidLevel(
                "the body has no \"compatibility\" field".to_owned(),
            ));
        };
        name.parse()
            .map_err(|_| ApiError::InvalidLevel(format!("{name:?}")))
    }
}

/// What `GET` and `DELETE /config…` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LevelReply {
    compatibility_level: CompatibilityLevel,
}

/// What `PUT /config…` answers.
#[derive(Debug, Serialize)]
pub(crate) struct LevelSet {
    compatibility: CompatibilityLevel,
}

/// The answer of `GET /mode…`.
#[derive(Debug, Serialize)]
pub(crate) struct ModeReply {
    mode: &'static str,
}

/// `GET /config`.
pub(crate) async fn global(
    State(registry): State<Registry>,
) -> Result<Reply<LevelReply>, ApiError> {
    let compatibility_level = registry.global_level().await?;
    Ok(Reply(LevelReply {
        compatibility_level,
    }))
}

/// `PUT /config`.
pub(crate) async fn set_global(
    State(registry): State<Registry>,
    Body(body): Body<LevelBody>,
) -> Result<Reply<LevelSet>, ApiError> {
    let compatibility = body.level()?;
    registry.set_global_level(compatibility).await?;
    Ok(Reply(LevelSet { compatibility }))
}

/// `GET /config/{subject}` (`defaultToGlobal`).
pub(crate) async fn subject(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
    params: Params,
) -> Result<Reply<LevelReply>, ApiError> {
    let compatibility_level = registry
        .subject_level(&subject, params.flag("defaultToGlobal"))
        .await?;
    Ok(Reply(LevelReply {
        compatibility_level,
    }))
}

/// `PUT /config/{subject}`.
pub(crate) async fn set_subject(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
    Body(body): Body<LevelBody>,
) -> Result<Reply<LevelSet>, ApiError> {
    let compatibility = body.level()?;
    registry.set_subject_level(&subject, compatibility).await?;
    Ok(Reply(LevelSet { compatibility }))
}

/// `DELETE /config/{subject}`: answers the level removed.
pub(crate) async fn delete_subject(
    State(registry): State<Registry>,
    Segments(subject): Segments<String>,
) -> Result<Reply<LevelReply>, ApiError> {
    let compatibility_level = registry.delete_subject_level(&subject).await?;
    Ok(Reply(LevelReply {
        compatibility_level,
    }))
}

/// `GET /mode` and `GET /mode/{subject}`: always READWRITE.
pub(crate) async fn mode() -> Reply<ModeReply> {
    Reply(ModeReply { mode: "READWRITE" })
}
