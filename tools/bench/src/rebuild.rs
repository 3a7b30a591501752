//! `eventmart-bench rebuild`: rebuilding a read model from the topics, as
//! `eventmart projection rebuild` does it, against a raw read of the same topics in the
//! same run.
//!
//! A fresh local broker (Tansu/SQLite) and registry get a backlog of finished sagas (five
//! events each). Then:
//!
//! - raw baseline: a plain rdkafka consumer assigned every partition of the read model's
//!   topics from the beginning, counting records up to each partition's end (the better of
//!   two reads: the first one reads a cold broker); and the same read with kcat. Both use
//!   the rebuild's `--fetch-wait`, on which the local broker's read rate depends;
//! - rebuild: `projection::rebuild` of the read model into a fresh database, from the
//!   beginning to promotion, per engine and per batch size. Its figure is the records its
//!   outcome counts over its whole elapsed time (opening the database, joining the group
//!   and the last progress check included), printed as a ratio to the raw read; the rate
//!   from its first applied record on is printed beside it, to tell start-up from
//!   throughput;
//! - where the time goes: the CPU this process and the broker used per record in each
//!   measurement (the PostgreSQL server's is not counted), and, with `--models
//!   consumer-only`, the same rebuild with a handler that does nothing: the floor the
//!   runtime's consumer sets under every read model.
//!
//! Kafka client settings given with `-X` apply to the rebuild's clients only, so that a
//! consumer setting can be tried against an unchanged baseline.
//!
//! It needs the release binary of the schema registry next to it, `tansu` on the PATH, and
//! for the PostgreSQL figures a PostgreSQL server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use eventmart_events::Topic;
use eventmart_runtime::consumer::{Handler, HandlerError, Incoming};
use eventmart_runtime::db::{Engine, Migrations};
use eventmart_runtime::projection::rebuild::{self, Outcome, Progress, RebuildOptions};
use eventmart_runtime::projection::versions;
use eventmart_runtime::projection::{Projection, Table};
use eventmart_runtime::testing::{TestDatabase, postgres_admin_url};
use sqlx::{AnyConnection, Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::Engines;
use crate::backlog::{self, Backlog, Read};
use crate::cpu::Cpu;

/// The ratio to the raw read a rebuild should reach.
const TARGET_RATIO: f64 = 0.6;

/// What to measure, and how much.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Sagas in the backlog (five events each).
    #[arg(long, default_value_t = 40_000)]
    orders: u32,
    /// Read model databases to rebuild into.
    #[arg(long, value_enum, default_value = "both")]
    engine: Engines,
    /// Records per database transaction; several, comma-separated, to compare.
    #[arg(long = "batch", value_delimiter = ',', default_value = "5000", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batches: Vec<u32>,
    /// Read models to rebuild, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "order-view")]
    models: Vec<Model>,
    /// How long the broker may hold a fetch when there is nothing to read.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    fetch_wait: Duration,
    /// The kcat wrapper that times the same read with kcat.
    #[arg(long, env = "EVENTMART_KCAT", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/kcat"))]
    kcat: PathBuf,
    /// Leave the kcat read out.
    #[arg(long)]
    no_kcat: bool,
}

/// The read models that can be rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Model {
    /// Orders with their saga timeline (orders, inventory, payments).
    OrderView,
    /// Each product's stock (catalog, inventory).
    ProductAvailability,
    /// Revenue and units per product and day (orders).
    Sales,
    /// Every order saga's steps (orders, inventory, payments).
    SagaTracker,
    /// No read model: the order view's topics through the rebuild's exactly-once consumer
    /// (decoding, deduplication, offsets) with a handler that does nothing.
    ConsumerOnly,
}

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::OrderView => order_view::NAME,
            Model::ProductAvailability => product_availability::NAME,
            Model::Sales => sales::NAME,
            Model::SagaTracker => saga_tracker::NAME,
            Model::ConsumerOnly => ConsumerOnly::NAME,
        }
    }

    fn topics(self) -> &'static [Topic] {
        match self {
            Model::OrderView => order_view::ReadModel::TOPICS,
            Model::ProductAvailability => product_availability::ReadModel::TOPICS,
            Model::Sales => sales::ReadModel::TOPICS,
            Model::SagaTracker => saga_tracker::ReadModel::TOPICS,
            Model::ConsumerOnly => ConsumerOnly::TOPICS,
        }
    }
}

pub(crate) async fn run(kafka: &[(String, String)], args: Args) -> anyhow::Result<()> {
    println!(
        "rebuild on a fresh local broker (Tansu/SQLite): {} sagas, writing them ...",
        args.orders
    );
    let backlog = Backlog::start(args.orders).await?;
    println!(
        "  {} events written in {:.1} s ({:.0} events/s, idempotent producer)",
        backlog.events,
        backlog.produced_in.as_secs_f64(),
        backlog.events as f64 / backlog.produced_in.as_secs_f64().max(1e-9)
    );
    if !kafka.is_empty() {
        let settings: Vec<String> = kafka.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "  rebuild Kafka client settings: {} (not given to the raw reads)",
            settings.join(", ")
        );
    }

    // Read models over the same topics share their baseline.
    let mut baselines: Vec<(Vec<String>, Read)> = Vec::new();
    for &model in &args.models {
        let topics = backlog.names(model.topics());
        if baselines.iter().any(|(t, _)| *t == topics) {
            continue;
        }
        let read = baseline(&backlog, &topics, &args).await?;
        baselines.push((topics, read));
    }

    for engine in args.engine.list() {
        println!("\n[{}]", crate::engine_name(engine));
        for &model in &args.models {
            let topics = backlog.names(model.topics());
            let raw = baselines
                .iter()
                .find(|(t, _)| *t == topics)
                .map(|(_, read)| *read)
                .context("a baseline for every set of topics")?;
            for &batch in &args.batches {
                let measured = rebuild_once(&backlog, model, engine, batch, &args, kafka).await?;
                measured.print(model, batch, raw, backlog.records_in(&topics));
            }
        }
    }
    Ok(())
}

/// The raw reads of `topics`: the better of two rdkafka reads, and a kcat read.
async fn baseline(backlog: &Backlog, topics: &[String], args: &Args) -> anyhow::Result<Read> {
    let ends = backlog.ends_of(topics);
    let bootstrap = &backlog.broker.bootstrap;
    let cpu = Cpu::now();
    let first = backlog::raw_read(bootstrap, &ends, args.fetch_wait).await?;
    let second = backlog::raw_read(bootstrap, &ends, args.fetch_wait).await?;
    let cpu = Cpu::per_record(cpu, first.records + second.records);
    let best = if second.rate() >= first.rate() {
        second
    } else {
        first
    };
    let names: Vec<&str> = topics
        .iter()
        .map(|t| t.strip_prefix(&backlog.prefix).unwrap_or(t))
        .collect();
    println!("\nraw reads of {} (3 partitions each)", names.join(", "));
    println!(
        "  raw rdkafka consumer (assign, to the ends)  {:>8} records {:>6.1} s {:>8.0} records/s   \
         (better of {:.0} and {:.0})",
        best.records,
        best.elapsed.as_secs_f64(),
        best.rate(),
        first.rate(),
        second.rate()
    );
    if let Some(cpu) = cpu {
        println!("    {cpu}");
    }
    if !args.no_kcat {
        match backlog::kcat_read(&args.kcat, bootstrap, topics, args.fetch_wait).await {
            Ok(read) => println!(
                "  kcat -C -e (one per topic, together)        {:>8} records {:>6.1} s {:>8.0} records/s",
                read.records,
                read.elapsed.as_secs_f64(),
                read.rate()
            ),
            Err(error) => println!("  kcat read skipped: {error:#}"),
        }
    }
    Ok(best)
}

/// One rebuild's figures.
struct Measured {
    outcome: Outcome,
    /// When the first applied record was seen, after the start, and how many were applied
    /// by then.
    first: Option<(Duration, u64)>,
    /// The CPU used per record.
    cpu: Option<String>,
}

impl Measured {
    fn print(&self, model: Model, batch: u32, raw: Read, expected: u64) {
        let outcome = &self.outcome;
        let elapsed = outcome.elapsed.as_secs_f64().max(1e-9);
        let rate = outcome.records as f64 / elapsed;
        let ratio = rate / raw.rate().max(1e-9);
        let verdict = if ratio >= TARGET_RATIO {
            "meets"
        } else {
            "below"
        };
        println!(
            "  {} rebuild, batch {batch:<5} {:>8} events {:>6.1} s {:>8.0} events/s   {ratio:.2} of raw \
             ({verdict} the {TARGET_RATIO} target)",
            model.name(),
            outcome.records,
            elapsed,
            rate,
        );
        if let Some((after, done)) = self.first {
            let rest = outcome
                .elapsed
                .saturating_sub(after)
                .as_secs_f64()
                .max(1e-9);
            let steady = outcome.records.saturating_sub(done) as f64 / rest;
            println!(
                "    first record applied after {:.1} s; from there {:.0} events/s ({:.2} of raw)",
                after.as_secs_f64(),
                steady,
                steady / raw.rate().max(1e-9)
            );
        }
        if let Some(cpu) = &self.cpu {
            println!("    {cpu}");
        }
        if outcome.records != expected || !outcome.promoted {
            println!(
                "    note: {} of {expected} records counted, promoted: {}",
                outcome.records, outcome.promoted
            );
        }
    }
}

/// Rebuilds `model` into a fresh database on `engine`, `batch` records a transaction.
async fn rebuild_once(
    backlog: &Backlog,
    model: Model,
    engine: Engine,
    batch: u32,
    args: &Args,
    kafka: &[(String, String)],
) -> anyhow::Result<Measured> {
    let database = TestDatabase::create(engine).await?;
    let service = backlog.service_args(&database.url, args.fetch_wait, kafka);
    let options = RebuildOptions {
        from: None,
        promote: true,
        handover: Duration::ZERO,
        batch_max: batch as usize,
    };
    let shutdown = CancellationToken::new();
    let cpu = Cpu::now();
    let started = Instant::now();
    let mut first = None;
    let progress = |p: &Progress| {
        if first.is_none() && p.done > 0 {
            first = Some((started.elapsed(), p.done));
        }
    };
    let outcome = match model {
        Model::OrderView => {
            rebuild::rebuild::<order_view::ReadModel>(&service, &options, progress, shutdown).await
        }
        Model::ProductAvailability => {
            rebuild::rebuild::<product_availability::ReadModel>(
                &service, &options, progress, shutdown,
            )
            .await
        }
        Model::Sales => {
            rebuild::rebuild::<sales::ReadModel>(&service, &options, progress, shutdown).await
        }
        Model::SagaTracker => {
            rebuild::rebuild::<saga_tracker::ReadModel>(&service, &options, progress, shutdown)
                .await
        }
        Model::ConsumerOnly => {
            rebuild::rebuild::<ConsumerOnly>(&service, &options, progress, shutdown).await
        }
    }
    .with_context(|| format!("rebuilding {}", model.name()))?;
    let cpu = Cpu::per_record(cpu, outcome.records).map(|cpu| match engine {
        Engine::Sqlite => cpu,
        Engine::Postgres => format!("{cpu} (PostgreSQL server not counted)"),
    });
    if engine == Engine::Postgres {
        // Each run makes two databases (the main one and the rebuilt version's) holding the
        // whole backlog; they go once measured, so that repeated runs do not pile them up.
        let rebuilt = versions::version_url(&database.url, outcome.version)?;
        drop_postgres(&[&database.url, &rebuilt]).await?;
    }
    Ok(Measured {
        outcome,
        first,
        cpu,
    })
}

/// Drops the PostgreSQL databases at `urls`.
async fn drop_postgres(urls: &[&str]) -> anyhow::Result<()> {
    let admin = postgres_admin_url();
    let mut conn = PgConnection::connect(&admin)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {admin}"))?;
    for url in urls {
        let Some((_, name)) = url.rsplit_once('/') else {
            continue;
        };
        let name = name.split('?').next().unwrap_or(name);
        let sql = format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            name.replace('"', "\"\"")
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    Ok(())
}

/// A read model with no tables whose handler does nothing: what a rebuild costs before any
/// read model's own work.
#[derive(Debug)]
struct ConsumerOnly;

impl Projection for ConsumerOnly {
    const NAME: &'static str = "consumer-only";
    const TOPICS: &'static [Topic] = order_view::ReadModel::TOPICS;
    const TABLES: &'static [Table] = &[];
    type Handler = Nothing;

    fn migrations() -> Migrations {
        Migrations::none()
    }

    fn handler(_engine: Engine) -> Nothing {
        Nothing
    }
}

/// Applies nothing.
#[derive(Debug)]
struct Nothing;

impl Handler for Nothing {
    async fn handle(
        &self,
        _tx: &mut AnyConnection,
        _event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}
