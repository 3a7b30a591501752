//! A Confluent-compatible Schema Registry for Avro, stored in SQLite or PostgreSQL.
//!
//! It serves the part of Confluent's REST API that Kafka clients and serializers use —
//! registering and looking up schemas, reading versions, compatibility checks and levels,
//! soft and permanent deletes — with Confluent's ids, status codes and error codes, so local
//! runs and tests need no JVM. Production can run Confluent's own registry in its place.
//!
//! - `config`: [`Config`], the settings of the binary, from flags or environment variables.
//! - `api`: the HTTP routes, request parsing and the mapping of errors to Confluent codes.
//! - `registry`: the operations and their rules (ids, versions, deletes, which versions a
//!   schema is checked against), with writes serialised (across instances on PostgreSQL)
//!   and transactional.
//! - `metrics`: what `/metrics` counts.
//! - `store`: the SQL, one path for both engines.
//! - `schema`: parsing Avro text and its references into a canonical, identifying text.
//! - `compat`: compatibility levels and the Avro resolution checks behind them (pure).
//!
//! It is not a general registry: JSON Schema and Protobuf are refused, the mode is always
//! READWRITE, and contexts, metadata and rule sets are ignored. Several instances may share
//! one PostgreSQL database; a SQLite file belongs to one instance.

mod api;
mod compat;
mod config;
mod metrics;
mod registry;
mod schema;
mod store;

use std::future::IntoFuture;
use std::time::Duration;

use eventmart_runtime::db::{self, DbError, Migrations};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use compat::{CompatibilityLevel, InvalidLevel};
pub use config::Config;

/// How long in-flight requests may take to finish once shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the registry could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The database could not be opened or migrated: check `DATABASE_URL` and retry.
    #[error("opening the database: {0}")]
    Database(#[from] DbError),
    /// The listener failed.
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
    /// The server task panicked or was aborted.
    #[error("the HTTP server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Opens and migrates the database named in `config`, then serves the API on `listener`
/// until `shutdown` is cancelled; in-flight requests then get a grace period to finish.
///
/// `config.listen` is not used: the caller binds the listener (tests bind `127.0.0.1:0`).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let migrations = Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    };
    let db = db::connect(&config.database_url, &migrations).await?;
    let metrics = metrics::RegistryMetrics::new();
    let registry =
        registry::Registry::new(db.clone(), config.default_compatibility, metrics.clone());
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        engine = ?db.engine,
        default_compatibility = %config.default_compatibility,
        "schema registry listening"
    );
    let server = axum::serve(listener, api::router(registry, db.pool.clone(), metrics))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    let mut server = tokio::spawn(server);
    let outcome = tokio::select! {
        finished = &mut server => finished,
        () = shutdown.cancelled() => match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(finished) => finished,
            Err(_) => {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the grace period; aborting them");
                server.abort();
                Ok(Ok(()))
            }
        },
    };
    db.pool.close().await;
    tracing::info!("schema registry stopped");
    outcome??;
    Ok(())
}
