//! What the consumer and dead-letter tests share: a real broker, registry and database per
//! test, a handler whose effect is countable, and ways to produce and to wait.
//!
//! The handler keeps a `stock(product_id, quantity)` table (RESTOCKED quantities added up)
//! and an `applied(event_id)` log without a unique key, so an event applied twice shows as
//! two rows.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::topics::{INVENTORY, Topic};
use eventmart_events::{Codec, Envelope, Event, Topics};
use eventmart_runtime::consumer::{
    Consumer, ConsumerConfig, ConsumerError, Handler, HandlerError, Incoming, PassedOver,
    stored_offsets,
};
use eventmart_runtime::db::{Db, Engine, Migrations, connect_component};
use eventmart_runtime::kafka::{TopicLayout, client_config, provision_topics};
use eventmart_runtime::metrics::Metrics;
use eventmart_runtime::testing::{TestBroker, TestDatabase, TestRegistry, unique_prefix, wait_for};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, Row};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long any one wait in a test may take.
pub const DEADLINE: Duration = Duration::from_secs(25);

/// One test's broker, registry, database and topics.
pub struct Harness {
    // Dropped first, while the broker still runs.
    producer: FutureProducer,
    pub broker: TestBroker,
    pub registry: TestRegistry,
    pub database: TestDatabase,
    pub db: Db,
    pub topics: Topics,
    /// The full name of the topic the tests read (`<prefix>inventory`).
    pub topic: String,
    pub codec: Codec,
}

pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rdkafka=warn,sqlx=warn".into()),
        )
        .try_init();
}

impl Harness {
    pub async fn start(engine: Engine) -> Self {
        init_logging();
        let (broker, registry, database) = tokio::join!(
            TestBroker::start(),
            TestRegistry::start(),
            TestDatabase::create(engine)
        );
        let (broker, registry, database) = (
            broker.expect("broker starts"),
            registry.expect("registry starts (cargo build --bins first)"),
            database.expect("database is created (is PostgreSQL running?)"),
        );
        let db = connect_component(
            &database.url,
            Migrations {
                sqlite: Migrator::DEFAULT,
                postgres: Migrator::DEFAULT,
            },
        )
        .await
        .expect("database opens");
        for statement in [
            "CREATE TABLE stock (product_id TEXT PRIMARY KEY, quantity BIGINT NOT NULL)",
            // `seq` numbers the applications in commit order.
            "CREATE TABLE applied (event_id TEXT NOT NULL, seq BIGINT)",
        ] {
            sqlx::query(statement)
                .execute(&db.pool)
                .await
                .expect("test tables");
        }
        let topics = Topics::new(unique_prefix());
        provision_topics(
            &broker.bootstrap,
            &[],
            &topics.all(),
            &TopicLayout::default(),
        )
        .await
        .expect("topics");
        let producer = client_config(&broker.bootstrap, &[])
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .create()
            .expect("producer");
        Self {
            topic: topics.name(Topic::Inventory),
            codec: Codec::new(&registry.url),
            broker,
            registry,
            database,
            db,
            topics,
            producer,
        }
    }

    pub fn kafka(&self) -> ClientConfig {
        client_config(&self.broker.bootstrap, &[])
    }

    pub fn dlq_topic(&self) -> String {
        self.topics.dlq(Topic::Inventory)
    }

    /// A configuration for `group` reading the test topic, with short pauses.
    pub fn config(&self, group: &str) -> ConsumerConfig {
        let mut config = ConsumerConfig::new(group, [self.topic.clone()]);
        config.retry_backoff_base = Duration::from_millis(20);
        config.retry_backoff_max = Duration::from_millis(300);
        config.lag_interval = Duration::from_secs(1);
        config
    }

    /// Starts a consumer with `config` and `handler` on a task of its own.
    pub fn spawn(&self, config: ConsumerConfig, handler: impl Handler) -> Running {
        self.spawn_passing_over(config, handler, PassedOver::new())
    }

    /// [`Harness::spawn`], passing over `records` (see `Consumer::pass_over`).
    pub fn spawn_passing_over(
        &self,
        config: ConsumerConfig,
        handler: impl Handler,
        records: PassedOver,
    ) -> Running {
        let metrics = Metrics::new();
        let consumer = Consumer::new(
            config,
            self.kafka(),
            self.db.clone(),
            self.codec.clone(),
            metrics.clone(),
        )
        .pass_over(records);
        let shutdown = CancellationToken::new();
        let join = tokio::spawn(consumer.run(handler, shutdown.clone()));
        Running {
            shutdown,
            join,
            metrics,
        }
    }

    /// Produces `event` as Avro with its envelope in headers, keyed by its aggregate.
    pub async fn produce(&self, event: &Event) -> Envelope {
        let envelope = Envelope::new(event);
        self.produce_with(event, &envelope).await;
        envelope
    }

    /// Produces `event` as Avro with `envelope` in headers.
    pub async fn produce_with(&self, event: &Event, envelope: &Envelope) {
        let value = self
            .codec
            .encode(&self.topic, event)
            .await
            .expect("encodes");
        let headers: Vec<(&str, String)> = envelope
            .to_headers()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v).expect("text header")))
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.produce_raw(&envelope.aggregate_id, &value, &headers)
            .await;
    }

    /// Produces an arbitrary record on the test topic.
    pub async fn produce_raw(&self, key: &str, value: &[u8], headers: &[(&str, &str)]) {
        let headers = headers.iter().fold(OwnedHeaders::new(), |out, (k, v)| {
            out.insert(Header {
                key: k,
                value: Some(*v),
            })
        });
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(key)
                    .payload(value)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .expect("acknowledged");
    }

    /// Where each partition of `topic` ends.
    pub async fn ends(&self, topic: &str) -> BTreeMap<i32, i64> {
        let config = self.kafka();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create().expect("client");
            (0..TopicLayout::default().partitions)
                .map(|p| {
                    let (_, high) = consumer
                        .fetch_watermarks(&topic, p, Duration::from_secs(10))
                        .expect("watermarks");
                    (p, high)
                })
                .collect()
        })
        .await
        .expect("watermarks task")
    }

    /// The offsets Kafka holds for `group` on the test topic, by partition (absent: none).
    pub async fn kafka_committed(&self, group: &str) -> BTreeMap<i32, i64> {
        let mut config = self.kafka();
        config.set("group.id", group);
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = config.create().expect("client");
            let mut partitions = TopicPartitionList::new();
            for p in 0..TopicLayout::default().partitions {
                partitions.add_partition(&topic, p);
            }
            consumer
                .committed_offsets(partitions, Duration::from_secs(10))
                .expect("committed offsets")
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(n) => Some((e.partition(), n)),
                    _ => None,
                })
                .collect()
        })
        .await
        .expect("committed offsets task")
    }

    /// Waits until `group` has stored, for every partition of the test topic, an offset at its
    /// current end: every record produced so far is settled.
    pub async fn wait_settled(&self, group: &str) {
        let ends = self.ends(&self.topic).await;
        wait_for("every record to be settled", DEADLINE, || {
            let ends = ends.clone();
            async move {
                let stored = stored_offsets(&self.db.pool, group).await.ok()?;
                ends.iter()
                    .filter(|(_, end)| **end > 0)
                    .all(|(p, end)| {
                        stored
                            .get(&(self.topic.clone(), *p))
                            .is_some_and(|next| next >= end)
                    })
                    .then_some(())
            }
        })
        .await
        .expect("settled");
    }

    /// Waits until the applied log holds `n` rows.
    pub async fn wait_applied(&self, n: i64) {
        wait_for(&format!("{n} applied events"), DEADLINE, || async move {
            (self.applied().await.0 >= n).then_some(())
        })
        .await
        .expect("applied");
    }

    /// Rows in the applied log, and distinct event ids among them.
    pub async fn applied(&self) -> (i64, i64) {
        let row = sqlx::query("SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM applied")
            .fetch_one(&self.db.pool)
            .await
            .expect("count");
        (row.get("n"), row.get("d"))
    }

    /// How many times `event_id` is in the applied log.
    /// The events applied, in the order they were applied.
    pub async fn applied_in_order(&self) -> Vec<Uuid> {
        sqlx::query_scalar::<_, String>("SELECT event_id FROM applied ORDER BY seq")
            .fetch_all(&self.db.pool)
            .await
            .expect("applied")
            .iter()
            .map(|id| Uuid::parse_str(id).expect("uuid"))
            .collect()
    }

    /// The parked events, by offset: (partition, offset, event id, reason).
    pub async fn parked(&self) -> Vec<(i64, i64, Uuid, String)> {
        sqlx::query_as::<_, (i64, i64, String, String)>(
            "SELECT partition_id, record_offset, event_id, reason FROM consumer_parked \
             ORDER BY partition_id, record_offset",
        )
        .fetch_all(&self.db.pool)
        .await
        .expect("parked")
        .into_iter()
        .map(|(p, o, id, reason)| (p, o, Uuid::parse_str(&id).expect("uuid"), reason))
        .collect()
    }

    pub async fn times_applied(&self, event_id: Uuid) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM applied WHERE event_id = $1")
            .bind(event_id.to_string())
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }

    /// Quantity in stock by product.
    pub async fn stock(&self) -> BTreeMap<Uuid, i64> {
        sqlx::query("SELECT product_id, quantity FROM stock")
            .fetch_all(&self.db.pool)
            .await
            .expect("stock")
            .iter()
            .map(|row| {
                let id: String = row.get("product_id");
                (Uuid::parse_str(&id).expect("uuid"), row.get("quantity"))
            })
            .collect()
    }
}

/// A consumer running on its own task.
pub struct Running {
    pub shutdown: CancellationToken,
    pub join: JoinHandle<Result<(), ConsumerError>>,
    pub metrics: Metrics,
}

impl Running {
    /// Cancels it and waits (boundedly) for it to finish.
    pub async fn stop(self) -> Metrics {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.join)
            .await
            .expect("stops within the grace time")
            .expect("does not panic")
            .expect("runs without error");
        self.metrics
    }
}

/// The value of a metric line that starts with `series` (name and labels as rendered).
pub fn metric(metrics: &Metrics, series: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A RESTOCKED `inventory.updated` of `quantity` for `product`.
pub fn restock(product: Uuid, quantity: i32) -> Event {
    InventoryUpdated {
        change: InventoryChange::Restocked,
        order_id: None,
        lines: vec![StockLine {
            product_id: product,
            quantity,
        }],
        reason: None,
        updated_at: eventmart_events::timestamp::now(),
    }
    .into()
}

/// What the stock should be after `events` (all restocks) applied once each.
pub fn expected_stock(events: &[Event]) -> BTreeMap<Uuid, i64> {
    let mut out = BTreeMap::new();
    for event in events {
        if let Event::InventoryUpdated(e) = event {
            for line in &e.lines {
                *out.entry(line.product_id).or_insert(0) += i64::from(line.quantity);
            }
        }
    }
    out
}

pub fn topic_base() -> &'static str {
    INVENTORY
}

/// A failure the handler is told to produce for one event.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Fail transiently this many more times.
    Transient(u32),
    /// Fail permanently until told otherwise.
    Permanent,
    /// Wait for a fact that has not arrived, until told otherwise.
    Waiting,
}

/// Adds RESTOCKED quantities to `stock` and logs each applied event in `applied`, failing on
/// demand.
#[derive(Clone, Default)]
pub struct StockHandler {
    faults: Arc<Mutex<HashMap<Uuid, Fault>>>,
    calls: Arc<Mutex<HashMap<Uuid, u32>>>,
    delay: Duration,
}

impl StockHandler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Each event takes at least `delay` to apply.
    pub fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    pub fn fail(&self, event_id: Uuid, fault: Fault) {
        self.faults.lock().expect("lock").insert(event_id, fault);
    }

    /// "Fixes the bug": no more failures.
    pub fn heal(&self) {
        self.faults.lock().expect("lock").clear();
    }

    /// How often `handle` was called for `event_id`.
    pub fn calls(&self, event_id: Uuid) -> u32 {
        self.calls
            .lock()
            .expect("lock")
            .get(&event_id)
            .copied()
            .unwrap_or(0)
    }

    fn fault(&self, event_id: Uuid) -> Option<HandlerError> {
        *self
            .calls
            .lock()
            .expect("lock")
            .entry(event_id)
            .or_insert(0) += 1;
        let mut faults = self.faults.lock().expect("lock");
        match faults.get_mut(&event_id)? {
            Fault::Permanent => Some(HandlerError::permanent("the handler refuses this event")),
            Fault::Waiting => Some(HandlerError::waiting("the product is not known yet")),
            Fault::Transient(0) => None,
            Fault::Transient(left) => {
                *left -= 1;
                Some(HandlerError::transient("the warehouse system is busy"))
            }
        }
    }
}

impl Handler for StockHandler {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let event_id = event.envelope().event_id;
        if let Some(error) = self.fault(event_id) {
            return Err(error);
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if let Event::InventoryUpdated(e) = event.event()
            && e.change == InventoryChange::Restocked
        {
            for line in &e.lines {
                sqlx::query(
                    "INSERT INTO stock (product_id, quantity) VALUES ($1, $2) \
                     ON CONFLICT (product_id) DO UPDATE SET quantity = stock.quantity + excluded.quantity",
                )
                .bind(line.product_id.to_string())
                .bind(i64::from(line.quantity))
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO applied (event_id, seq) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM applied))",
        )
        .bind(event_id.to_string())
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
