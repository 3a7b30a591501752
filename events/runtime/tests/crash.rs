//! Crash anywhere, converge: a writer appends restocks through its outbox while it and a
//! reader are killed with SIGKILL at random moments and restarted. At the end every committed
//! event is in Kafka, every event's effect was applied exactly once, and each product's
//! restocks were applied in order. Then a clean stop: SIGTERM during load commits what was
//! processed and exits within the grace time. Both on SQLite and on PostgreSQL.

use std::collections::HashSet;
use std::time::{Duration, Instant};

mod journal_support;

use eventmart_events::Topic;
use eventmart_runtime::db::Engine;
use eventmart_runtime::kafka::{TopicLayout, provision_topics};
use eventmart_runtime::testing::{
    TestBroker, TestDatabase, TestProcess, TestRegistry, unique_prefix, wait_for,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::AnyPool;

/// A tiny deterministic generator, so a failing run can be repeated from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The ledger processes' log level: `LEDGER_LOG` (e.g. `info` when a run needs a look).
fn log_level() -> String {
    std::env::var("LEDGER_LOG").unwrap_or_else(|_| "warn".to_owned())
}

struct World {
    broker: TestBroker,
    registry: TestRegistry,
    prefix: String,
}

impl World {
    async fn start() -> World {
        let broker = TestBroker::start().await.expect("broker");
        let registry = TestRegistry::start().await.expect("registry");
        let prefix = unique_prefix();
        let topics = eventmart_events::Topics::new(&prefix).all();
        provision_topics(&broker.bootstrap, &[], &topics, &TopicLayout::default())
            .await
            .expect("topics");
        World {
            broker,
            registry,
            prefix,
        }
    }

    fn ledger(&self, db: &str, args: &[&str]) -> TestProcess {
        TestProcess::spawn(
            "ledger",
            args,
            &[
                ("DATABASE_URL", db),
                ("EVENTMART_BOOTSTRAP_SERVERS", &self.broker.bootstrap),
                ("EVENTMART_REGISTRY_URL", &self.registry.url),
                ("EVENTMART_TOPIC_PREFIX", &self.prefix),
                ("RUST_LOG", &log_level()),
            ],
        )
        .expect("ledger starts")
    }

    fn topic(&self, topic: Topic) -> String {
        eventmart_events::Topics::new(&self.prefix).name(topic)
    }

    fn dead_letters(&self) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.broker.bootstrap)
            .create()
            .expect("consumer");
        let dlq = format!("{}.dlq", self.topic(Topic::Inventory));
        (0..3)
            .map(|p| {
                let (low, high) = consumer
                    .fetch_watermarks(&dlq, p, Duration::from_secs(10))
                    .expect("watermarks");
                high - low
            })
            .sum()
    }
}

/// Opens the database of a ledger process once it has started (and so migrated it itself:
/// two processes migrating one SQLite file at once would race).
async fn open(process: &TestProcess, url: &str) -> AnyPool {
    wait_for("the ledger to start", Duration::from_secs(60), || async {
        process.log().contains("listening on").then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", process.log()));
    sqlx::any::install_default_drivers();
    AnyPool::connect(url).await.expect("database")
}

/// Restocks applied so far; an error until the reader has created its tables.
async fn applied(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back.
    sqlx::query_as::<_, (i64,)>("SELECT CAST(COALESCE(SUM(applied), 0) AS BIGINT) FROM ledger")
        .fetch_one(pool)
        .await
        .map(|(n,)| n)
}

async fn crash_anywhere_and_converge(engine: Engine) {
    const EVENTS: u64 = 3000;
    const PRODUCTS: u64 = 15;
    const MIN_KILLS: u32 = 16;
    let world = World::start().await;
    let writer_db = TestDatabase::create(engine).await.expect("writer db");
    let reader_db = TestDatabase::create(engine).await.expect("reader db");
    let count = EVENTS.to_string();
    let products = PRODUCTS.to_string();
    let writer_args = ["append", "--count", &count, "--products", &products];
    let reader_args = ["consume", "--group", "crash", "--batch", "50"];

    let mut writer = world.ledger(&writer_db.url, &writer_args);
    let mut reader = world.ledger(&reader_db.url, &reader_args);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let (mut writer_kills, mut reader_kills) = (0, 0);
    let started = Instant::now();
    // Kill one of the two at a random moment, restart it, and again, until the writer has
    // appended and published everything (it then exits by itself) and there were at least
    // MIN_KILLS kills. A writer restarted after it finished finds its work done and exits.
    loop {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(500))).await;
        if writer.exited_successfully().expect("writer status")
            && writer_kills + reader_kills >= MIN_KILLS
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "writer never finished:\n{}",
            writer.log()
        );
        if rng.below(2) == 0 {
            writer.kill().await;
            writer = world.ledger(&writer_db.url, &writer_args);
            writer_kills += 1;
        } else {
            reader.kill().await;
            reader = world.ledger(&reader_db.url, &reader_args);
            reader_kills += 1;
        }
    }
    // One last crash of the reader after the writer is done, so it resumes from its database.
    reader.kill().await;
    reader = world.ledger(&reader_db.url, &reader_args);
    reader_kills += 1;

    let writer_pool = open(&writer, &writer_db.url).await;
    let reader_pool = open(&reader, &reader_db.url).await;
    wait_for(
        "the reader to apply every event",
        Duration::from_secs(120),
        || async {
            applied(&reader_pool)
                .await
                .ok()
                .filter(|&n| n >= EVENTS as i64)
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nreader log:\n{}\nwriter log:\n{}",
            reader.log(),
            writer.log()
        )
    });

    // Every committed event is in Kafka (some more than once, after a crash before the ack).
    let journal: Vec<(String, String)> =
        sqlx::query_as("SELECT event_id, aggregate_id FROM event_journal")
            .fetch_all(&writer_pool)
            .await
            .expect("journal");
    assert_eq!(journal.len() as u64, EVENTS);
    let published = journal_support::read_topic(
        &world.broker.bootstrap,
        &world.registry.url,
        &world.topic(Topic::Inventory),
        journal.len(),
        Duration::from_secs(120),
    )
    .await
    .expect("the topic reads back");
    for record in &published {
        let traceparent = record.envelope.traceparent.as_deref().unwrap_or_default();
        assert!(
            traceparent.len() == 55 && traceparent.starts_with("00-"),
            "every published record carries a W3C traceparent, got {traceparent:?}"
        );
    }
    let in_kafka: HashSet<String> = published
        .iter()
        .map(|r| r.envelope.event_id.to_string())
        .collect();
    for (event_id, aggregate_id) in &journal {
        assert!(
            in_kafka.contains(event_id),
            "{event_id} of {aggregate_id} never reached Kafka"
        );
    }
    assert_eq!(
        in_kafka.len(),
        journal.len(),
        "Kafka holds events nobody committed"
    );

    // Every effect exactly once and in order.
    let per_product: Vec<(String, i64, i64, i64)> =
        sqlx::query_as("SELECT product_id, applied, last_sequence, total FROM ledger")
            .fetch_all(&reader_pool)
            .await
            .expect("ledger");
    assert_eq!(per_product.len() as u64, PRODUCTS);
    for (product, applied, last, total) in &per_product {
        let n = (EVENTS / PRODUCTS) as i64;
        assert_eq!(*applied, n, "{product} applied {applied} of {n}");
        assert_eq!(*last, n, "{product}");
        assert_eq!(
            *total,
            n * (n + 1) / 2,
            "{product}: a restock was applied twice or lost"
        );
    }
    let (violations,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM order_violations")
        .fetch_one(&reader_pool)
        .await
        .expect("violations");
    assert_eq!(violations, 0, "restocks applied out of order");
    assert_eq!(world.dead_letters(), 0, "nothing is poison here");
    println!(
        "{engine:?}: {EVENTS} events, {} records in Kafka, {writer_kills} writer kills, \
         {reader_kills} reader kills, {:.1}s (seed {seed})",
        published.len(),
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_anywhere_and_converge_on_sqlite() {
    crash_anywhere_and_converge(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_anywhere_and_converge_on_postgres() {
    crash_anywhere_and_converge(Engine::Postgres).await;
}

async fn sigterm_commits_and_exits_within_the_grace_time(engine: Engine) {
    const EVENTS: u64 = 3000;
    let world = World::start().await;
    let writer_db = TestDatabase::create(engine).await.expect("writer db");
    let reader_db = TestDatabase::create(engine).await.expect("reader db");
    let count = EVENTS.to_string();
    let mut writer = world.ledger(
        &writer_db.url,
        &["append", "--count", &count, "--products", "10"],
    );
    let reader_args = [
        "--grace", "10s", "consume", "--group", "stop", "--batch", "20",
    ];
    let mut reader = world.ledger(&reader_db.url, &reader_args);
    let reader_pool = open(&reader, &reader_db.url).await;

    // Stop the reader while events are flowing.
    wait_for("the reader to be busy", Duration::from_secs(60), || async {
        applied(&reader_pool).await.ok().filter(|&n| n > 100)
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nreader log:\n{}\nwriter log:\n{}",
            reader.log(),
            writer.log()
        )
    });
    let stopped = Instant::now();
    let status = reader
        .terminate(Duration::from_secs(15))
        .await
        .expect("reader exits");
    let took = stopped.elapsed();
    assert!(
        status.success(),
        "clean exit after SIGTERM:\n{}",
        reader.log()
    );
    assert!(
        took < Duration::from_secs(10),
        "exited after {took:?}, beyond the grace time"
    );
    let at_stop = applied(&reader_pool).await.expect("ledger");

    // A restarted reader carries on from what was committed: nothing twice, nothing lost.
    let until = Instant::now() + Duration::from_secs(120);
    while !writer.exited_successfully().expect("writer status") {
        assert!(
            Instant::now() < until,
            "writer never finished:\n{}",
            writer.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _reader = world.ledger(&reader_db.url, &reader_args);
    wait_for("every event applied", Duration::from_secs(120), || async {
        applied(&reader_pool)
            .await
            .ok()
            .filter(|&n| n >= EVENTS as i64)
    })
    .await
    .expect("all applied");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        applied(&reader_pool).await.expect("ledger"),
        EVENTS as i64,
        "no event applied twice"
    );
    println!("{engine:?}: stopped after {at_stop} events in {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_commits_and_exits_within_the_grace_time_on_sqlite() {
    sigterm_commits_and_exits_within_the_grace_time(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_commits_and_exits_within_the_grace_time_on_postgres() {
    sigterm_commits_and_exits_within_the_grace_time(Engine::Postgres).await;
}
