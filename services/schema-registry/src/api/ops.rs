//! `/health/…` and `/metrics`: for orchestrators and Prometheus, not part of Confluent's API.
//!
//! Health answers as every other process of the project does (the runtime's
//! `process::health_router`, ready only while the database answers), so that one probe
//! and one dashboard fit them all; the figures are the registry's own.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use eventmart_runtime::metrics::Metrics;
use eventmart_runtime::process::{self, Readiness};
use sqlx::AnyPool;

use crate::metrics::RegistryMetrics;

/// `/health/live`, `/health/ready` (checking `database`) and `/metrics`.
pub(crate) fn router(database: AnyPool, metrics: RegistryMetrics) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
        .merge(process::health_router(Readiness::new().database(database)))
}

/// `GET /metrics`.
async fn render(State(metrics): State<RegistryMetrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)],
        metrics.render(),
    )
}
