//! `/health/…`: for orchestrators, not part of Confluent's API.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::registry::Registry;

/// `GET /health/live`: the process serves requests.
pub(crate) async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /health/ready`: the database answers too.
pub(crate) async fn ready(State(registry): State<Registry>) -> (StatusCode, Json<Value>) {
    match registry.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": error.to_string()})),
        ),
    }
}
