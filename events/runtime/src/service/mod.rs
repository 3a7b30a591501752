//! What every command service runs besides its own domain: its database, journal and relay,
//! one consumer group for the topics it reacts to, its timers, and one HTTP listener serving
//! its API with `/health/*` and `/metrics`, all under one shutdown token.
//!
//! ```ignore
//! let mut service = Service::start("orders", &config.service, Migrations::none, shutdown).await?;
//! service.consume(&[Topic::Orders, Topic::Inventory], Reactions::new(&service));
//! service.timers("order_deadline", Duration::from_millis(200), Deadlines::new(&service));
//! service.serve(listener, api::router(&service)).await
//! ```
//!
//! A service runs on the live version of its state: version 1 is its main database, a later
//! one a state rebuilt from the topics ([`rebuild`]) and promoted while it was stopped.
//! Every running instance holds the database's [`lock::WriterLock`] shared, which is how a
//! promotion knows it is stopped.
//!
//! Not here: routes, reactions and rules, which are each service's own.

mod handover;
pub mod lock;
pub mod rebuild;

use std::time::Duration;

use anyhow::Context;
use axum::Router;
use eventmart_events::{Codec, Topic, Topics};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::consumer::{Consumer, ConsumerConfig, Handler};
use crate::db::{self, Db, Migrations};
use crate::journal::{Journal, Relay, RelayConfig};
use crate::kafka;
use crate::metrics::Metrics;
use crate::process::{self, Connections, Readiness};
use crate::projection::versions;
use crate::timers::{self, TimerHandler};

use self::lock::WriterLock;

/// The settings every service takes, flattened into each service's own configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub connections: Connections,
    /// The service's own database: `sqlite://FILE` or `postgres://…` (default:
    /// `sqlite://var/<service>.db`).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Address to serve the API, health and metrics on [default: the service's own port on
    /// 127.0.0.1]
    #[arg(long, env = "EVENTMART_LISTEN")]
    pub listen: Option<String>,
    /// How long tasks may take to finish after SIGTERM before they are aborted.
    #[arg(long, env = "EVENTMART_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// How long the consumer group waits for a silent member (Kafka session.timeout.ms).
    #[arg(long, env = "EVENTMART_SESSION_TIMEOUT", default_value = "6s", value_parser = humantime::parse_duration)]
    pub session_timeout: Duration,
    /// Longest time the broker may hold a fetch with no records (Kafka fetch.wait.max.ms).
    /// The local broker answers a waiting fetch only at this limit, so it bounds each saga
    /// hop's latency; shorter costs the broker more idle work.
    #[arg(long, env = "EVENTMART_FETCH_WAIT", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub fetch_wait: Duration,
    /// How long an event that waits for a fact (an order not known yet) stays parked for its
    /// key before it and the events queued behind it are dead-lettered.
    #[arg(long, env = "EVENTMART_PARK_BUDGET", default_value = "10m", value_parser = humantime::parse_duration)]
    pub park_budget: Duration,
    /// How long applied events' ids are kept to recognise duplicates (see
    /// `ConsumerConfig::dedup_retention`).
    #[arg(long, env = "EVENTMART_DEDUP_RETENTION", default_value = "30days", value_parser = humantime::parse_duration)]
    pub dedup_retention: Duration,
    /// How long a command's `Idempotency-Key` and its first answer are kept: a retry with the
    /// key within this time gets the same answer.
    #[arg(long, env = "EVENTMART_IDEMPOTENCY_RETENTION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub idempotency_retention: Duration,
}

impl ServiceArgs {
    /// The database URL, or `sqlite://var/<service>.db`.
    pub fn database_url(&self, service: &str) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://var/{service}.db"))
    }

    /// Binds the listen address, or `127.0.0.1:<default_port>`.
    pub async fn bind(&self, default_port: u16) -> anyhow::Result<TcpListener> {
        let address = self
            .listen
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{default_port}"));
        TcpListener::bind(&address)
            .await
            .with_context(|| format!("binding {address}"))
    }
}

/// A running service's shared parts; see the [module docs](self).
#[derive(Debug)]
pub struct Service {
    /// The service's name: its consumer group and default database file.
    pub name: &'static str,
    /// Its settings.
    pub args: ServiceArgs,
    /// Its database.
    pub db: Db,
    /// Its journal (and outbox).
    pub journal: Journal,
    /// The codec of every topic.
    pub codec: Codec,
    /// Its metrics.
    pub metrics: Metrics,
    /// The topic names.
    pub topics: Topics,
    shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
    _lock: WriterLock,
}

/// How often old idempotency keys are deleted.
const FORGET_KEYS_EVERY: Duration = Duration::from_secs(10 * 60);

/// Deletes idempotency keys older than `retention`, every ten minutes (or a quarter of the
/// retention, if that is shorter).
async fn forget_idempotency_keys(
    journal: Journal,
    retention: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let period = FORGET_KEYS_EVERY
        .min(retention / 4)
        .max(Duration::from_secs(1));
    // The first look one period after start: starting adds no work.
    let first = tokio::time::Instant::now() + period;
    let mut every = tokio::time::interval_at(first, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = every.tick() => {}
        }
        match crate::command::forget_idempotency_keys(&journal, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(forgotten = n, "old idempotency keys forgotten"),
            Err(error) => tracing::warn!(%error, "forgetting old idempotency keys failed"),
        }
    }
}

impl Service {
    /// Opens the live version of the service's database (running the runtime's migrations
    /// and `migrations`), makes sure every topic exists, and starts the relay.
    pub async fn start(
        name: &'static str,
        args: &ServiceArgs,
        migrations: fn() -> Migrations,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let url = args.database_url(name);
        let lock = WriterLock::shared(&url, name).await?;
        let main = db::connect_component(&url, migrations())
            .await
            .with_context(|| format!("opening the {name} database"))?;
        versions::ensure_first(&main.pool, name, &url).await?;
        let live = versions::live(&main.pool, name).await?;
        let db = versions::open(&main, &url, &live, migrations).await?;
        if live.database_url != url {
            tracing::info!(
                service = name,
                version = live.number,
                "running on a rebuilt state"
            );
            main.pool.close().await;
        }
        let connections = &args.connections;
        let topics = connections.topics();
        connections.provision().await?;
        let codec = Codec::new(&connections.registry_url);
        let metrics = Metrics::new();
        if let Some(own) = eventmart_events::Topic::from_base_name(name) {
            metrics.relay_started(&topics.name(own));
        }
        let journal = Journal::new(db.clone(), topics.clone());
        let mut relay_config = RelayConfig::new(&connections.bootstrap_servers);
        relay_config.kafka = connections.kafka.clone();
        let relay = Relay::new(
            journal.clone(),
            codec.clone(),
            metrics.clone(),
            relay_config,
        )?;
        let mut tasks = JoinSet::new();
        let stop = shutdown.clone();
        tasks.spawn(async move { Ok(relay.run(stop).await?) });
        tasks.spawn(lock.watch(shutdown.clone()));
        tasks.spawn(forget_idempotency_keys(
            journal.clone(),
            args.idempotency_retention,
            shutdown.clone(),
        ));
        Ok(Self {
            name,
            args: args.clone(),
            db,
            journal,
            codec,
            metrics,
            topics,
            shutdown,
            tasks,
            _lock: lock,
        })
    }

    /// Consumes `topics` as the consumer group named after the service, applying each event
    /// with `handler` exactly once. A handler that appends to the journal wakes the relay in
    /// [`Handler::committed`].
    pub fn consume<H: Handler>(&mut self, topics: &[Topic], handler: H) {
        let names = topics.iter().map(|t| self.topics.name(*t));
        let mut config = ConsumerConfig::new(self.name, names);
        config.session_timeout = self.args.session_timeout;
        config.fetch_wait = self.args.fetch_wait;
        config.park_budget = self.args.park_budget;
        config.dedup_retention = self.args.dedup_retention;
        let kafka = kafka::client_config(
            &self.args.connections.bootstrap_servers,
            &self.args.connections.kafka,
        );
        let consumer = Consumer::new(
            config,
            kafka,
            self.db.clone(),
            self.codec.clone(),
            self.metrics.clone(),
        );
        let stop = self.shutdown.clone();
        self.tasks
            .spawn(async move { Ok(consumer.run(handler, stop).await?) });
    }

    /// Fires the due timers of `kind` every `poll` with `handler`.
    pub fn timers<H: TimerHandler>(&mut self, kind: &'static str, poll: Duration, handler: H) {
        let journal = self.journal.clone();
        let stop = self.shutdown.clone();
        self.tasks
            .spawn(timers::run(journal, kind, poll, handler, stop));
    }

    /// The shutdown token every task of the service follows.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Serves `api` (plus `/health/live`, `/health/ready` and `/metrics`) on `listener`, and
    /// runs every task until shutdown; returns the first failure.
    pub async fn serve(mut self, listener: TcpListener, api: Router) -> anyhow::Result<()> {
        let readiness = Readiness::new()
            .database(self.db.pool.clone())
            .broker(&self.args.connections)?
            .registry(&self.args.connections.registry_url);
        let router = api.merge(process::ops_router(readiness, self.metrics.clone()));
        tracing::info!(
            service = self.name,
            address = %listener.local_addr()?,
            "serving"
        );
        self.tasks.spawn(process::serve(
            listener,
            router,
            self.metrics.clone(),
            self.shutdown.clone(),
        ));
        process::supervise(self.tasks, self.shutdown, self.args.grace).await
    }
}
