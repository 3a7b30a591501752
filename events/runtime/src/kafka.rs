//! Kafka client settings and topic provisioning.
//!
//! Only standard Kafka APIs are used here, so the same code runs against the local broker and
//! a production cluster. Event topics are the system's source of truth, so they are created
//! explicitly with a long, explicit retention and never compacted: nothing relies on a
//! broker's defaults (auto-creation, default retention).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

/// A hundred years: event topics keep every record for as long as the system lives.
pub const EVENT_RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Builds a client configuration for `bootstrap_servers`, with `extra` settings layered on
/// top (e.g. `security.protocol` for a production cluster).
pub fn client_config(bootstrap_servers: &str, extra: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    for (key, value) in extra {
        config.set(key, value);
    }
    config
}

/// How new topics are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLayout {
    /// Partitions per topic; aggregates are spread over them by key.
    pub partitions: i32,
    /// Copies of each partition (1 locally, 3 on a production cluster).
    pub replication_factor: i32,
    /// How long records are kept.
    pub retention: Duration,
}

impl Default for TopicLayout {
    fn default() -> Self {
        Self {
            partitions: 3,
            replication_factor: 1,
            retention: EVENT_RETENTION,
        }
    }
}

/// What provisioning did to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    /// The topic did not exist and was created.
    Created(String),
    /// The topic was already there and was left as it was.
    Existed(String),
}

/// Why topics could not be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The broker did not answer in time; check that it runs and the address is right.
    #[error("broker at {bootstrap} did not answer within {waited:?}: {reason}")]
    Unreachable {
        /// The address tried.
        bootstrap: String,
        /// How long it was tried.
        waited: Duration,
        /// The last error seen.
        reason: String,
    },
    /// The broker refused to create a topic.
    #[error("creating topic {topic} failed: {reason}")]
    Refused {
        /// The topic.
        topic: String,
        /// What the broker said.
        reason: String,
    },
}

/// Waits until the broker at `bootstrap_servers` answers a metadata request, trying for at
/// most `wait`.
pub async fn wait_for_broker(
    bootstrap_servers: &str,
    extra: &[(String, String)],
    wait: Duration,
) -> Result<(), ProvisionError> {
    let config = client_config(bootstrap_servers, extra);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let config = config.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
            consumer
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match attempt {
            Ok(()) => return Ok(()),
            Err(reason) if tokio::time::Instant::now() >= deadline => {
                return Err(ProvisionError::Unreachable {
                    bootstrap: bootstrap_servers.to_owned(),
                    waited: wait,
                    reason,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Creates each of `topics` that does not exist yet, with `layout`; topics that exist are
/// left untouched. Safe to run any number of times.
pub async fn provision_topics(
    bootstrap_servers: &str,
    extra: &[(String, String)],
    topics: &[String],
    layout: &TopicLayout,
) -> Result<Vec<Provisioned>, ProvisionError> {
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap_servers, extra)
        .create()
        .map_err(|e| ProvisionError::Unreachable {
            bootstrap: bootstrap_servers.to_owned(),
            waited: Duration::ZERO,
            reason: e.to_string(),
        })?;
    let retention = layout.retention.as_millis().to_string();
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                layout.partitions,
                TopicReplication::Fixed(layout.replication_factor),
            )
            .set("retention.ms", &retention)
            .set("cleanup.policy", "delete")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(|e| ProvisionError::Unreachable {
            bootstrap: bootstrap_servers.to_owned(),
            waited: Duration::from_secs(30),
            reason: e.to_string(),
        })?;
    results
        .into_iter()
        .map(|result| match result {
            Ok(name) => Ok(Provisioned::Created(name)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => Ok(Provisioned::Existed(name)),
            Err((topic, code)) => Err(ProvisionError::Refused {
                topic,
                reason: code.to_string(),
            }),
        })
        .collect()
}

/// The topics the broker reports, sorted, with their partition counts.
pub async fn list_topics(
    bootstrap_servers: &str,
    extra: &[(String, String)],
) -> Result<Vec<(String, usize)>, ProvisionError> {
    let config = client_config(bootstrap_servers, extra);
    let bootstrap = bootstrap_servers.to_owned();
    let unreachable = move |reason: String| ProvisionError::Unreachable {
        bootstrap: bootstrap.clone(),
        waited: Duration::from_secs(10),
        reason,
    };
    let listed = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
        let metadata = consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let mut topics: Vec<(String, usize)> = metadata
            .topics()
            .iter()
            .map(|t| (t.name().to_owned(), t.partitions().len()))
            .collect();
        topics.sort();
        Ok::<_, String>(topics)
    })
    .await
    .map_err(|e| e.to_string());
    listed.and_then(|r| r).map_err(unreachable)
}
