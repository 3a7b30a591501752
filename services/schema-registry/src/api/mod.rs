//! The HTTP API: Confluent's Schema Registry routes, plus health checks and metrics.
//!
//! - `wire`: reading bodies, paths and queries; writing responses in Confluent's media type.
//! - `error`: the one error type, mapped to Confluent's status and error codes.
//! - `schemas`, `subjects`, `compatibility`, `config`: the routes, one module per resource.
//! - `ops`: liveness, readiness and `/metrics`, as every process of the project serves them.
//!
//! Handlers only translate between HTTP and the registry; the rules live in `registry`.

mod compatibility;
mod config;
mod error;
mod ops;
mod schemas;
mod subjects;
mod wire;

use axum::Router;
use axum::routing::get;
use sqlx::AnyPool;

use crate::metrics::RegistryMetrics;
use crate::registry::Registry;

use self::error::ApiError;
use self::wire::Reply;

/// Every route: Confluent's over `registry`, health over `database`, and `metrics`.
pub(crate) fn router(registry: Registry, database: AnyPool, metrics: RegistryMetrics) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::text_by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_by_id))
        .route("/schemas/ids/{id}/subjects", get(schemas::subjects_by_id))
        .route("/subjects", get(subjects::list))
        .route(
            "/subjects/{subject}",
            axum::routing::post(subjects::lookup).delete(subjects::delete),
        )
        .route(
            "/subjects/{subject}/versions",
            get(subjects::versions).post(subjects::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::version_of).delete(subjects::delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(subjects::schema_of),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(subjects::referenced_by),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            axum::routing::post(compatibility::against_level),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            axum::routing::post(compatibility::against_version),
        )
        .route("/config", get(config::global).put(config::set_global))
        .route(
            "/config/{subject}",
            get(config::subject)
                .put(config::set_subject)
                .delete(config::delete_subject),
        )
        .route("/mode", get(config::mode))
        .route("/mode/{subject}", get(config::mode))
        .with_state(registry)
        .merge(ops::router(database, metrics))
        // Last, so that the merged routes also answer a wrong method with a Confluent error.
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

/// `GET /`: an empty object, as Confluent answers.
async fn root() -> Reply<serde_json::Map<String, serde_json::Value>> {
    Reply(serde_json::Map::new())
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
