//! Process plumbing every binary shares: where the broker and registry are, logging, one
//! shutdown token, supervised tasks with a grace period, and the health and metrics
//! endpoints.
//!
//! The shutdown story: SIGTERM or Ctrl-C cancels one [`CancellationToken`]; every task stops
//! taking new work, finishes and commits what it has in flight, and returns; tasks still
//! running after the grace period are aborted.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;
use sqlx::AnyPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Where the broker and the schema registry are, shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct Connections {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "EVENTMART_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Base URL of the Confluent-compatible schema registry.
    #[arg(
        long,
        global = true,
        env = "EVENTMART_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub registry_url: String,
    /// Prefix of every topic name (lets several systems, or tests, share a broker).
    #[arg(
        long,
        global = true,
        env = "EVENTMART_TOPIC_PREFIX",
        default_value = ""
    )]
    pub topic_prefix: String,
    /// Extra Kafka client setting KEY=VALUE, as librdkafka names it (repeatable, or
    /// comma-separated in the variable), e.g. security.protocol=SSL.
    #[arg(
        short = 'X',
        long = "kafka-setting",
        global = true,
        env = "EVENTMART_KAFKA_SETTINGS",
        value_delimiter = ',',
        value_parser = parse_setting
    )]
    pub kafka: Vec<(String, String)>,
}

impl Connections {
    /// The topic names under this prefix.
    pub fn topics(&self) -> eventmart_events::Topics {
        eventmart_events::Topics::new(&self.topic_prefix)
    }

    /// Waits (up to a minute) until the broker answers, then makes sure every topic and its
    /// dead-letter topic exist: what a component does before it reads or writes a topic.
    pub async fn provision(&self) -> Result<(), crate::kafka::ProvisionError> {
        crate::kafka::wait_for_broker(
            &self.bootstrap_servers,
            &self.kafka,
            std::time::Duration::from_secs(60),
        )
        .await?;
        crate::kafka::provision_topics(
            &self.bootstrap_servers,
            &self.kafka,
            &self.topics().all(),
            &crate::kafka::TopicLayout::default(),
        )
        .await?;
        Ok(())
    }
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as JSON lines when
/// `EVENTMART_LOG_FORMAT=json`.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (as in tests) keeps the first subscriber.
    let _ = if std::env::var("EVENTMART_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::info!("shutdown requested");
        cancel.cancel();
    });
    token
}

/// Runs `tasks` until they all end. The first task to fail cancels `shutdown` for the others;
/// once `shutdown` is cancelled, tasks get `grace` to finish before they are aborted.
/// Returns the first failure.
pub async fn supervise(
    mut tasks: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let mut first_error: Option<anyhow::Error> = None;
    loop {
        let next = tokio::select! {
            next = tasks.join_next() => next,
            () = shutdown.cancelled() => break,
        };
        match next {
            None => return first_error.map_or(Ok(()), Err),
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(error))) => {
                tracing::error!(error = format!("{error:#}"), "task failed; shutting down");
                first_error.get_or_insert(error);
                shutdown.cancel();
            }
            Some(Err(join)) => {
                tracing::error!(error = %join, "task panicked; shutting down");
                first_error.get_or_insert(anyhow::anyhow!("task panicked: {join}"));
                shutdown.cancel();
            }
        }
    }
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(join) => {
                    first_error.get_or_insert(anyhow::anyhow!("task panicked: {join}"));
                }
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            ?grace,
            "tasks still running after the grace period; aborting them"
        );
        tasks.abort_all();
    }
    first_error.map_or(Ok(()), Err)
}

/// What `/health/ready` checks: each part the process needs, when it has one.
#[derive(Clone, Default)]
pub struct Readiness {
    database: Option<AnyPool>,
    broker: Option<Arc<BaseConsumer>>,
    registry: Option<(reqwest::Client, String)>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("database", &self.database.is_some())
            .field("broker", &self.broker.is_some())
            .field("registry", &self.registry.as_ref().map(|(_, url)| url))
            .finish()
    }
}

impl Readiness {
    /// Nothing checked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also check that the database answers.
    pub fn database(mut self, pool: AnyPool) -> Self {
        self.database = Some(pool);
        self
    }

    /// Also check that the broker answers a metadata request.
    pub fn broker(mut self, connections: &Connections) -> anyhow::Result<Self> {
        let consumer: BaseConsumer =
            crate::kafka::client_config(&connections.bootstrap_servers, &connections.kafka)
                .create()?;
        self.broker = Some(Arc::new(consumer));
        Ok(self)
    }

    /// Also check that the schema registry answers.
    pub fn registry(mut self, url: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        self.registry = Some((client, url.trim_end_matches('/').to_owned()));
        self
    }

    /// Checks every part; each entry is the part's name and `"ok"` or what is wrong.
    pub async fn check(&self) -> Vec<(&'static str, Result<(), String>)> {
        let mut results = Vec::new();
        if let Some(pool) = &self.database {
            let answer = tokio::time::timeout(
                Duration::from_secs(2),
                sqlx::query("SELECT 1").execute(pool),
            )
            .await;
            results.push((
                "database",
                match answer {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 2s".to_owned()),
                },
            ));
        }
        if let Some(consumer) = &self.broker {
            let consumer = Arc::clone(consumer);
            let answer = tokio::task::spawn_blocking(move || {
                consumer
                    .fetch_metadata(None, Duration::from_secs(2))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            results.push(("broker", answer));
        }
        if let Some((client, url)) = &self.registry {
            let answer = match client.get(format!("{url}/subjects")).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("answered {}", r.status())),
                Err(e) => Err(e.to_string()),
            };
            results.push(("registry", answer));
        }
        results
    }
}

/// `/health/live` (the process runs), `/health/ready` (every part it needs answers; 503
/// naming what does not) and `/metrics` (Prometheus text format). Merge it into a
/// component's own router.
pub fn ops_router(readiness: Readiness, metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
        .merge(health_router(readiness))
}

/// `/health/live` and `/health/ready` alone, as [`ops_router`] serves them: for a process
/// whose `/metrics` are not the runtime's (the schema registry has no consumer or relay to
/// count, but figures of its own).
pub fn health_router(readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/health/live",
            get(|| async { axum::Json(json!({"status": "live"})) }),
        )
        .route("/health/ready", get(ready))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    let results = readiness.check().await;
    let all_ok = results.iter().all(|(_, r)| r.is_ok());
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| {
            (
                name.to_owned(),
                json!(r.err().unwrap_or_else(|| "ok".to_owned())),
            )
        })
        .collect();
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if all_ok { "ready" } else { "unavailable" };
    (
        status,
        axum::Json(json!({"status": word, "checks": checks})),
    )
}

async fn render_metrics(State(metrics): State<Metrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)],
        metrics.render(),
    )
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight requests
/// finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, crate::http::layer(router, metrics))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_task_stops_the_others_and_is_reported() {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let token = shutdown.clone();
        tasks.spawn(async move {
            token.cancelled().await;
            Ok(())
        });
        tasks.spawn(async { Err(anyhow::anyhow!("broker gone")) });
        let result = supervise(tasks, shutdown.clone(), Duration::from_secs(5)).await;
        assert!(shutdown.is_cancelled());
        assert_eq!(
            result.map_err(|e| e.to_string()).err().as_deref(),
            Some("broker gone")
        );
    }

    #[tokio::test]
    async fn tasks_that_ignore_shutdown_are_aborted_after_the_grace_period() {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tasks.spawn(async {
            std::future::pending::<()>().await;
            Ok(())
        });
        shutdown.cancel();
        let started = std::time::Instant::now();
        supervise(tasks, shutdown, Duration::from_millis(100))
            .await
            .expect("no task failed");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn readiness_names_the_part_that_does_not_answer() {
        let port = crate::testing::free_port().expect("port");
        let readiness = Readiness::new().registry(&format!("http://127.0.0.1:{port}"));
        let results = readiness.check().await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].0, "registry");
        assert!(results[0].1.is_err());
    }
}
