//! `eventmart-bench saga`: the order saga through all five services, as real processes on a
//! fresh local broker, against the broker's own produce-to-consume round trip measured in
//! the same run.
//!
//! - raw round trip: one record produced (idempotent, acks=all) and received by a consumer
//!   already assigned to the topic, one at a time;
//! - saturation: orders placed by many concurrent clients; orders per second from the first
//!   `order.created` to the last order's end (`order.confirmed` or `order.cancelled`);
//! - latency: orders placed at a steady moderate rate; `order.created` to `order.confirmed`,
//!   from the events' own timestamps on the orders topic.
//!
//! A confirmed order crosses four hops (orders → inventory → payments → orders → inventory
//! for the sale); the report divides the saga latency by the raw round trip to show what a
//! hop costs beyond the broker.
//!
//! It needs the release binaries of the services and the registry next to it
//! (`cargo build --release --workspace --bins`), `tansu` on the PATH, and for the PostgreSQL
//! figures a PostgreSQL server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use eventmart_runtime::db::Engine;
use eventmart_runtime::kafka::{TopicLayout, client_config, provision_topics};
use eventmart_system::flows::{Flows, Percentiles};
use eventmart_system::{Settings, System};
use futures::future::join_all;
use rdkafka::Message;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// What to measure, and how much.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Orders in the saturation run.
    #[arg(long, default_value_t = 1_000)]
    orders: usize,
    /// Concurrent clients placing orders in the saturation run.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Orders per second in the latency run.
    #[arg(long, default_value_t = 10)]
    rate: u64,
    /// Orders in the latency run.
    #[arg(long, default_value_t = 200)]
    latency_orders: usize,
    /// Raw round trips measured.
    #[arg(long, default_value_t = 300)]
    round_trips: usize,
    /// Service database engines to measure, comma-separated: sqlite, postgres.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres", value_parser = crate::runtime::parse_engine)]
    engines: Vec<Engine>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    for engine in &args.engines {
        let label = match engine {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
        };
        println!("\nsaga on a fresh local broker (Tansu/SQLite), service databases on {label}");
        let mut settings = Settings::new(*engine);
        settings.order_deadline = Duration::from_secs(600);
        let system = Arc::new(System::start(settings).await?);
        let shop = Shop::open(&system).await?;

        let raw = round_trips(&system, args.round_trips).await?;
        println!(
            "  raw round trip produce->consume ({} x)      p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms",
            args.round_trips,
            raw.p(50),
            raw.p(95),
            raw.p(99)
        );

        let started = Instant::now();
        let placed = shop
            .place_concurrently(args.orders, args.concurrency)
            .await?;
        let placing = started.elapsed();
        let flows = Flows::read(&system, &placed, Duration::from_secs(600)).await?;
        let span = flows.span_ms(&placed);
        println!(
            "  saturation: {} orders, {} clients            {:.0} orders/s through the saga \
             (placed in {:.1} s at {:.0}/s; {} confirmed)",
            placed.len(),
            args.concurrency,
            placed.len() as f64 / (span / 1000.0),
            placing.as_secs_f64(),
            placed.len() as f64 / placing.as_secs_f64(),
            flows.confirmed(&placed).len(),
        );

        let placed = shop.place_at_rate(args.latency_orders, args.rate).await?;
        let flows = Flows::read(&system, &placed, Duration::from_secs(600)).await?;
        let latency = Percentiles::of(flows.confirmed(&placed));
        println!(
            "  latency at {}/s, created->confirmed ({} orders) p50 {:.0} ms   p95 {:.0} ms   p99 {:.0} ms",
            args.rate,
            latency.len(),
            latency.p(50),
            latency.p(95),
            latency.p(99)
        );
        println!(
            "  per hop (p50 / 4 hops)                        {:.1} ms = {:.1} x the raw round trip",
            latency.p(50) / 4.0,
            latency.p(50) / 4.0 / raw.p(50).max(0.001)
        );
    }
    Ok(())
}

/// Users and well-stocked products to order from.
struct Shop {
    system: Arc<System>,
    users: Vec<Uuid>,
    products: Vec<Uuid>,
}

impl Shop {
    async fn open(system: &Arc<System>) -> anyhow::Result<Self> {
        let mut users = Vec::new();
        for n in 0..20 {
            users.push(
                system
                    .register_user(&format!("bench{n}@example.com"))
                    .await?,
            );
        }
        let mut products = Vec::new();
        for n in 0..10 {
            let product = system
                .create_product(&format!("BENCH-{n}"), 100 + n)
                .await?;
            system.restock(product, 1_000_000).await?;
            products.push(product);
        }
        // One order end to end, so every replica is warm before timing.
        let first = system
            .place_order(users[0], &[(products[0], 1)], None)
            .await?;
        system.wait_final(first, Duration::from_secs(60)).await?;
        Ok(Self {
            system: system.clone(),
            users,
            products,
        })
    }

    fn order(&self, n: usize) -> (Uuid, Vec<(Uuid, i64)>) {
        let user = self.users[n % self.users.len()];
        let lines = vec![
            (self.products[n % self.products.len()], 1),
            (self.products[(n + 3) % self.products.len()], 2),
        ];
        (user, lines)
    }

    async fn place_concurrently(&self, orders: usize, clients: usize) -> anyhow::Result<Vec<Uuid>> {
        let gate = Arc::new(Semaphore::new(clients));
        let placing = (0..orders).map(|n| {
            let gate = gate.clone();
            let (user, lines) = self.order(n);
            let system = self.system.clone();
            async move {
                let _permit = gate.acquire().await?;
                system.place_order(user, &lines, None).await
            }
        });
        join_all(placing).await.into_iter().collect()
    }

    async fn place_at_rate(&self, orders: usize, rate: u64) -> anyhow::Result<Vec<Uuid>> {
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        let mut pending = Vec::new();
        for n in 0..orders {
            tick.tick().await;
            let (user, lines) = self.order(n);
            let system = self.system.clone();
            pending.push(tokio::spawn(async move {
                system.place_order(user, &lines, None).await
            }));
        }
        let mut placed = Vec::new();
        for order in pending {
            placed.push(order.await??);
        }
        Ok(placed)
    }
}

/// The broker's own round trip: produce one record, receive it on a consumer already
/// assigned to the topic's end; one at a time.
async fn round_trips(system: &System, n: usize) -> anyhow::Result<Percentiles> {
    let topic = format!("{}bench-round-trip", system.prefix());
    provision_topics(
        &system.broker.bootstrap,
        &[],
        std::slice::from_ref(&topic),
        &TopicLayout::default(),
    )
    .await?;
    let producer: FutureProducer = client_config(&system.broker.bootstrap, &[])
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()?;
    let consumer: StreamConsumer = client_config(&system.broker.bootstrap, &[])
        .set("group.id", format!("bench-round-trip-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::End)?;
    consumer.assign(&assignment)?;
    // The first record only positions the consumer.
    let mut samples = Vec::with_capacity(n);
    for i in 0..=n {
        let payload = i.to_string();
        let started = Instant::now();
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(0)
                    .key("k")
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .context("the round-trip record did not come back")??;
            if message.payload() == Some(payload.as_bytes()) {
                break;
            }
        }
        if i > 0 {
            samples.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(Percentiles::of(samples))
}
