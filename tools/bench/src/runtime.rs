//! `eventmart-bench runtime`: the event runtime against raw Kafka clients on the same broker.
//!
//! - append + relay: events appended through the journal (several writers, a few events a
//!   transaction) until the relay has had every one acknowledged, against a raw idempotent
//!   producer writing the same encoded records; and the relay alone draining a backlog;
//! - consume: the exactly-once consumer (dedup and offsets in the database, an effect per
//!   event) against a raw consumer reading the same records;
//! - relay latency: commit to broker acknowledgement at a steady moderate rate.
//!
//! Each database figure is measured on SQLite and on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::{Codec, Envelope, Event, Topic, Topics};
use eventmart_runtime::consumer::{Consumer, ConsumerConfig, Handler, HandlerError, Incoming};
use eventmart_runtime::db::{self, Db, Engine};
use eventmart_runtime::journal::{ExpectedVersion, Journal, Relay, RelayConfig};
use eventmart_runtime::kafka::{TopicLayout, client_config, provision_topics};
use eventmart_runtime::metrics::Metrics;
use eventmart_runtime::process::Connections;
use eventmart_runtime::testing::TestDatabase;
use futures::future::join_all;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// What to measure, and how much.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Events per throughput measurement.
    #[arg(long, default_value_t = 20_000)]
    events: u64,
    /// Aggregates (products) the events are spread over.
    #[arg(long, default_value_t = 100)]
    aggregates: u64,
    /// Concurrent writers appending to the journal.
    #[arg(long, default_value_t = 4)]
    writers: u64,
    /// Events per append transaction (all of one aggregate).
    #[arg(long, default_value_t = 10)]
    per_transaction: u64,
    /// Events per second in the relay latency run.
    #[arg(long, default_value_t = 200)]
    latency_rate: u64,
    /// Events in the relay latency run.
    #[arg(long, default_value_t = 2_000)]
    latency_events: u64,
    /// Database engines to measure, comma-separated: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres", value_parser = parse_engine)]
    engines: Vec<Engine>,
}

pub(crate) fn parse_engine(s: &str) -> Result<Engine, String> {
    match s {
        "sqlite" => Ok(Engine::Sqlite),
        "postgres" => Ok(Engine::Postgres),
        _ => Err(format!("expected sqlite or postgres, got {s:?}")),
    }
}

/// Rate in events per second.
fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn restock(product: u64, quantity: i32) -> Event {
    Event::InventoryUpdated(InventoryUpdated {
        change: InventoryChange::Restocked,
        order_id: None,
        lines: vec![StockLine {
            product_id: Uuid::from_u128(u128::from(product) + 1),
            quantity,
        }],
        reason: None,
        updated_at: eventmart_events::timestamp::now(),
    })
}

struct Bench<'a> {
    conn: &'a Connections,
    args: &'a Args,
    codec: Codec,
    run_id: String,
}

pub(crate) async fn run(conn: &Connections, args: Args) -> anyhow::Result<()> {
    let run_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let bench = Bench {
        conn,
        args: &args,
        codec: Codec::new(&conn.registry_url),
        run_id,
    };
    println!(
        "eventmart-bench runtime: {} events over {} aggregates; broker {}",
        args.events, args.aggregates, conn.bootstrap_servers
    );

    let topics = bench.topics("raw").await?;
    let topic = topics.name(Topic::Inventory);
    let raw_produce = bench.raw_produce(&topic).await?;
    // The first read of a topic is a cold one; the consumers measured later read it warm,
    // so the baseline is the better of two reads.
    let raw_consume = bench
        .raw_consume(&topic, "a")?
        .max(bench.raw_consume(&topic, "b")?);
    println!(
        "raw rdkafka producer (idempotent, acks=all)   {:>9.0} events/s",
        raw_produce
    );
    println!(
        "raw rdkafka consumer                          {:>9.0} events/s",
        raw_consume
    );

    for &engine in &args.engines {
        let name = match engine {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        };
        println!("\n[{name}]");
        let (append_relay, drain) = bench.append_and_relay(engine).await?;
        println!(
            "append + relay ({} writers, {}/tx)            {:>9.0} events/s   {:.2} of raw produce",
            args.writers,
            args.per_transaction,
            append_relay,
            append_relay / raw_produce
        );
        println!(
            "relay draining a backlog                      {:>9.0} events/s   {:.2} of raw produce",
            drain,
            drain / raw_produce
        );
        let (consumed, join) = bench.consume(engine, &topic).await?;
        println!(
            "exactly-once consumer (dedup + offsets in db) {:>9.0} events/s   {:.2} of raw consume   (group join {:.1}s, not counted)",
            consumed,
            consumed / raw_consume,
            join.as_secs_f64()
        );
        let (p50, p99, max) = bench.relay_latency(engine).await?;
        println!(
            "relay latency commit->ack at {}/s            p50 {p50} ms   p99 {p99} ms   max {max} ms",
            args.latency_rate
        );
    }
    Ok(())
}

impl Bench<'_> {
    /// A fresh set of topics for one measurement.
    async fn topics(&self, part: &str) -> anyhow::Result<Topics> {
        let topics = Topics::new(format!("bench-{}-{part}.", self.run_id));
        provision_topics(
            &self.conn.bootstrap_servers,
            &self.conn.kafka,
            &topics.all(),
            &TopicLayout::default(),
        )
        .await?;
        Ok(topics)
    }

    fn producer(&self) -> anyhow::Result<FutureProducer> {
        Ok(
            client_config(&self.conn.bootstrap_servers, &self.conn.kafka)
                .set("enable.idempotence", "true")
                .set("acks", "all")
                .set("linger.ms", "2")
                .create()?,
        )
    }

    /// The raw baseline: the same encoded records, written by a plain idempotent producer.
    async fn raw_produce(&self, topic: &str) -> anyhow::Result<f64> {
        let mut records = Vec::with_capacity(self.args.events as usize);
        for i in 0..self.args.events {
            let event = restock(i % self.args.aggregates, 1);
            let envelope = Envelope::new(&event);
            let value = self.codec.encode(topic, &event).await?;
            records.push((envelope, value));
        }
        let producer = self.producer()?;
        let started = Instant::now();
        let sends = records.iter().map(|(envelope, value)| {
            let mut headers = OwnedHeaders::new();
            for (key, bytes) in envelope.to_headers() {
                headers = headers.insert(Header {
                    key,
                    value: Some(&bytes),
                });
            }
            producer.send(
                FutureRecord::to(topic)
                    .key(&envelope.aggregate_id)
                    .payload(value)
                    .headers(headers),
                Duration::from_secs(30),
            )
        });
        for result in join_all(sends).await {
            result.map_err(|(e, _)| e)?;
        }
        Ok(rate(self.args.events, started.elapsed()))
    }

    /// The raw baseline: every record of `topic` read by a plain consumer (`attempt` names
    /// its group).
    fn raw_consume(&self, topic: &str, attempt: &str) -> anyhow::Result<f64> {
        let consumer: BaseConsumer = client_config(&self.conn.bootstrap_servers, &self.conn.kafka)
            .set("group.id", format!("bench-raw-{}-{attempt}", self.run_id))
            .set("enable.auto.commit", "false")
            .create()?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..3 {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let started = Instant::now();
        let mut read = 0;
        while read < self.args.events {
            if started.elapsed() > Duration::from_secs(300) {
                bail!("raw consumer read only {read} records");
            }
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                message?;
                read += 1;
            }
        }
        Ok(rate(read, started.elapsed()))
    }

    async fn database(&self, engine: Engine) -> anyhow::Result<(TestDatabase, Db)> {
        let database = TestDatabase::create(engine).await?;
        let db = db::connect(&database.url, &db::runtime_migrations()).await?;
        Ok((database, db))
    }

    fn relay(&self, journal: &Journal) -> anyhow::Result<Relay> {
        let mut config = RelayConfig::new(&self.conn.bootstrap_servers);
        config.kafka = self.conn.kafka.clone();
        Ok(Relay::new(
            journal.clone(),
            self.codec.clone(),
            Metrics::new(),
            config,
        )?)
    }

    /// Appends `count` events from the configured writers, `per_transaction` to a
    /// transaction.
    async fn append(&self, journal: &Journal, count: u64) -> anyhow::Result<()> {
        let next = Arc::new(AtomicU64::new(0));
        let per_tx = self.args.per_transaction.max(1);
        let writers = (0..self.args.writers.max(1)).map(|_| {
            let journal = journal.clone();
            let next = Arc::clone(&next);
            let aggregates = self.args.aggregates;
            async move {
                loop {
                    let first = next.fetch_add(per_tx, Ordering::Relaxed);
                    if first >= count {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let product = (first / per_tx) % aggregates;
                    let events: Vec<(Event, Envelope)> = (first..(first + per_tx).min(count))
                        .map(|_| {
                            let event = restock(product, 1);
                            let envelope = Envelope::new(&event);
                            (event, envelope)
                        })
                        .collect();
                    let aggregate = events[0].1.aggregate_id.clone();
                    let mut tx = journal.db().pool.begin().await?;
                    journal
                        .append(&mut tx, &aggregate, ExpectedVersion::Any, events)
                        .await?;
                    tx.commit().await?;
                    journal.committed();
                }
            }
        });
        for result in join_all(writers).await {
            result?;
        }
        Ok(())
    }

    async fn wait_published(journal: &Journal) -> anyhow::Result<()> {
        let started = Instant::now();
        while journal.unpublished().await? > 0 {
            if started.elapsed() > Duration::from_secs(600) {
                bail!("the relay did not publish everything within 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Append + relay together, then the relay alone draining a backlog.
    async fn append_and_relay(&self, engine: Engine) -> anyhow::Result<(f64, f64)> {
        let n = self.args.events;

        let topics = self
            .topics(&format!("append-{engine:?}").to_lowercase())
            .await?;
        let (_database, db) = self.database(engine).await?;
        let journal = Journal::new(db, topics);
        let stop = CancellationToken::new();
        let relay = tokio::spawn(self.relay(&journal)?.run(stop.clone()));
        // Warm up: the schema is registered and the producer connected before timing.
        self.append(&journal, 1).await?;
        Self::wait_published(&journal).await?;
        let started = Instant::now();
        self.append(&journal, n + 1).await?;
        Self::wait_published(&journal).await?;
        let together = rate(n, started.elapsed());
        stop.cancel();
        relay.await??;

        let topics = self
            .topics(&format!("drain-{engine:?}").to_lowercase())
            .await?;
        let (_database, db) = self.database(engine).await?;
        let journal = Journal::new(db, topics);
        self.append(&journal, n).await?;
        let stop = CancellationToken::new();
        let started = Instant::now();
        let relay = tokio::spawn(self.relay(&journal)?.run(stop.clone()));
        Self::wait_published(&journal).await?;
        let drain = rate(n, started.elapsed());
        stop.cancel();
        relay.await??;
        Ok((together, drain))
    }

    /// The exactly-once consumer applying every record of `topic`, timed from its first
    /// applied event (the group join before it is reported apart).
    async fn consume(&self, engine: Engine, topic: &str) -> anyhow::Result<(f64, Duration)> {
        let (_database, db) = self.database(engine).await?;
        sqlx::query(
            "CREATE TABLE bench_stock (product_id TEXT PRIMARY KEY, applied BIGINT NOT NULL)",
        )
        .execute(&db.pool)
        .await?;
        let group = format!("bench-{}-{engine:?}", self.run_id);
        let consumer = Consumer::new(
            ConsumerConfig::new(group, [topic]),
            client_config(&self.conn.bootstrap_servers, &self.conn.kafka),
            db.clone(),
            self.codec.clone(),
            Metrics::new(),
        );
        let stop = CancellationToken::new();
        let started = Instant::now();
        let task = tokio::spawn(consumer.run(Count, stop.clone()));
        let count = || async {
            sqlx::query_as::<_, (i64,)>(
                "SELECT CAST(COALESCE(SUM(applied), 0) AS BIGINT) FROM bench_stock",
            )
            .fetch_one(&db.pool)
            .await
            .map(|(n,)| u64::try_from(n).unwrap_or(0))
        };
        let mut first = None;
        loop {
            let applied = count().await?;
            if applied > 0 && first.is_none() {
                first = Some((Instant::now(), applied));
            }
            if applied >= self.args.events {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                bail!("the consumer applied only {applied} events in 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (first_at, first_n) = first.context("nothing applied")?;
        let figure = rate(self.args.events - first_n, first_at.elapsed());
        stop.cancel();
        task.await??;
        Ok((figure, first_at - started))
    }

    /// Commit → acknowledgement at a steady rate: p50, p99 and max in milliseconds.
    async fn relay_latency(&self, engine: Engine) -> anyhow::Result<(i64, i64, i64)> {
        let topics = self
            .topics(&format!("latency-{engine:?}").to_lowercase())
            .await?;
        let (_database, db) = self.database(engine).await?;
        let journal = Journal::new(db.clone(), topics);
        let stop = CancellationToken::new();
        let relay = tokio::spawn(self.relay(&journal)?.run(stop.clone()));
        self.append(&journal, 1).await?;
        Self::wait_published(&journal).await?;
        sqlx::query("DELETE FROM event_journal")
            .execute(&db.pool)
            .await?;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(
            1.0 / self.args.latency_rate.max(1) as f64,
        ));
        for i in 0..self.args.latency_events {
            tick.tick().await;
            let event = restock(i % self.args.aggregates, 1);
            let envelope = Envelope::new(&event);
            let aggregate = envelope.aggregate_id.clone();
            let mut tx = db.pool.begin().await?;
            journal
                .append(
                    &mut tx,
                    &aggregate,
                    ExpectedVersion::Any,
                    vec![(event, envelope)],
                )
                .await?;
            tx.commit().await?;
            journal.committed();
        }
        Self::wait_published(&journal).await?;
        stop.cancel();
        relay.await??;
        let mut latencies: Vec<i64> =
            sqlx::query_as::<_, (i64,)>("SELECT published_at - recorded_at FROM event_journal")
                .fetch_all(&db.pool)
                .await?
                .into_iter()
                .map(|(ms,)| ms)
                .collect();
        latencies.sort_unstable();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
        Ok((at(0.5), at(0.99), at(1.0)))
    }
}

/// Counts restocks per product: a real effect, one upsert per event.
#[derive(Debug)]
struct Count;

impl Handler for Count {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let Event::InventoryUpdated(update) = event.event() else {
            return Err(HandlerError::permanent("only restocks are counted"));
        };
        let product = update.lines.first().map(|l| l.product_id.to_string());
        sqlx::query(
            "INSERT INTO bench_stock (product_id, applied) VALUES ($1, 1) \
             ON CONFLICT (product_id) DO UPDATE SET applied = bench_stock.applied + 1",
        )
        .bind(product.unwrap_or_default())
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        Ok(())
    }
}
