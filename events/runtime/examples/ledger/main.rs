//! `ledger`: the smallest component built on the runtime, used by the crash, shutdown and
//! benchmark runs. It exercises every guarantee with events anyone can count.
//!
//! - `ledger append` is a writer: it restocks `--products` products in turn, one
//!   `inventory.updated` RESTOCKED event per transaction, whose quantity is the product's
//!   sequence number (1, 2, 3, …), until its journal holds `--count` events; its relay
//!   publishes them. Killed and restarted, it carries on where its journal says.
//! - `ledger consume` is a reader: it applies each restock to a per-product ledger, exactly
//!   once, and records any restock that arrives out of its product's order.
//!
//! Both serve `/health/live`, `/health/ready` and `/metrics` on `--listen`, and stop cleanly
//! on SIGTERM.

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::{Codec, Envelope, Event, Topic};
use eventmart_runtime::consumer::{Consumer, ConsumerConfig, Handler, HandlerError, Incoming};
use eventmart_runtime::db::{self, Migrations};
use eventmart_runtime::journal::{ExpectedVersion, Journal, Relay, RelayConfig};
use eventmart_runtime::metrics::Metrics;
use eventmart_runtime::process::{self, Connections, Readiness};
use sqlx::AnyConnection;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A writer and a reader of restock events, for exercising the runtime.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    connections: Connections,
    /// The component's database.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "sqlite://var/ledger.db"
    )]
    database_url: String,
    /// Where to serve health and metrics.
    #[arg(
        long,
        env = "LEDGER_LISTEN",
        global = true,
        default_value = "127.0.0.1:0"
    )]
    listen: String,
    /// How long tasks may take to finish after SIGTERM.
    #[arg(long, global = true, default_value = "10s", value_parser = humantime::parse_duration)]
    grace: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append restocks until the journal holds `count` events, publish them all, then exit.
    Append {
        /// Events the journal ends with.
        #[arg(long)]
        count: u64,
        /// Products restocked in turn.
        #[arg(long, default_value_t = 10)]
        products: u64,
    },
    /// Apply restocks to the ledger until stopped.
    Consume {
        /// The consumer group.
        #[arg(long, default_value = "ledger")]
        group: String,
        /// Records of one partition applied in one transaction, at most.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("examples/ledger/migrations/sqlite"),
        postgres: sqlx::migrate!("examples/ledger/migrations/postgres"),
    }
}

/// The product restocked at journal position `n` (0-based) with `products` in turn.
fn product(n: u64, products: u64) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("ledger-product-{}", n % products).as_bytes(),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let cli = Cli::parse();
    let shutdown = process::shutdown_on_signal();
    let db = db::connect_component(&cli.database_url, migrations())
        .await
        .context("opening the database")?;
    let metrics = Metrics::new();
    let readiness = Readiness::new()
        .database(db.pool.clone())
        .broker(&cli.connections)?
        .registry(&cli.connections.registry_url);
    let listener = tokio::net::TcpListener::bind(&cli.listen).await?;
    // Tests read the port from the first line.
    println!("listening on {}", listener.local_addr()?);

    let mut tasks = JoinSet::new();
    let router = process::ops_router(readiness, metrics.clone());
    tasks.spawn(process::serve(
        listener,
        router,
        metrics.clone(),
        shutdown.clone(),
    ));
    let codec = Codec::new(&cli.connections.registry_url);
    match cli.command {
        Command::Append { count, products } => {
            let journal = Journal::new(db.clone(), cli.connections.topics());
            let mut relay_config = RelayConfig::new(&cli.connections.bootstrap_servers);
            relay_config.kafka = cli.connections.kafka.clone();
            let relay = Relay::new(journal.clone(), codec, metrics, relay_config)?;
            let relay_stop = CancellationToken::new();
            let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
            let appended = append(&journal, count, products, &shutdown).await;
            // Everything appended is published before a finished writer exits.
            while appended.is_ok() && !shutdown.is_cancelled() && journal.unpublished().await? > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            relay_stop.cancel();
            relay_task.await??;
            shutdown.cancel();
            appended?;
        }
        Command::Consume { group, batch } => {
            let topic = cli.connections.topics().name(Topic::Inventory);
            let mut config = ConsumerConfig::new(group, [topic]);
            config.batch_max = batch;
            let kafka = eventmart_runtime::kafka::client_config(
                &cli.connections.bootstrap_servers,
                &cli.connections.kafka,
            );
            let consumer = Consumer::new(config, kafka, db.clone(), codec, metrics);
            let stop = shutdown.clone();
            tasks.spawn(async move { Ok(consumer.run(Ledger, stop).await?) });
        }
    }
    process::supervise(tasks, shutdown, cli.grace).await
}

/// Appends one restock per transaction until the journal holds `count` events.
async fn append(
    journal: &Journal,
    count: u64,
    products: u64,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let pool = &journal.db().pool;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM event_journal")
            .fetch_one(pool)
            .await?;
        let n = u64::try_from(n)?;
        if n >= count {
            return Ok(());
        }
        let product_id = product(n, products);
        let aggregate = product_id.to_string();
        let mut tx = pool.begin().await?;
        let version = journal.version(&mut tx, &aggregate).await?;
        let event = Event::InventoryUpdated(InventoryUpdated {
            change: InventoryChange::Restocked,
            order_id: None,
            lines: vec![StockLine {
                product_id,
                quantity: i32::try_from(version + 1)?,
            }],
            reason: None,
            updated_at: eventmart_events::timestamp::now(),
        });
        let envelope = Envelope::new(&event);
        journal
            .append(
                &mut tx,
                &aggregate,
                ExpectedVersion::Exactly(version),
                vec![(event, envelope)],
            )
            .await?;
        tx.commit().await?;
        journal.committed();
    }
}

/// Applies restocks to the ledger table.
#[derive(Debug)]
struct Ledger;

impl Handler for Ledger {
    async fn handle(
        &self,
        tx: &mut AnyConnection,
        event: &Incoming<'_>,
    ) -> Result<(), HandlerError> {
        let Event::InventoryUpdated(update) = event.event() else {
            return Err(HandlerError::permanent(
                "the ledger applies inventory.updated only",
            ));
        };
        let [line] = update.lines.as_slice() else {
            return Err(HandlerError::permanent("a restock has exactly one line"));
        };
        let product_id = line.product_id.to_string();
        let got = i64::from(line.quantity);
        let last: Option<(i64,)> =
            sqlx::query_as("SELECT last_sequence FROM ledger WHERE product_id = $1")
                .bind(&product_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(HandlerError::transient)?;
        let expected = last.map_or(1, |(n,)| n + 1);
        if got != expected {
            sqlx::query(
                "INSERT INTO order_violations (event_id, product_id, expected, got) VALUES ($1, $2, $3, $4)",
            )
            .bind(event.envelope().event_id.to_string())
            .bind(&product_id)
            .bind(expected)
            .bind(got)
            .execute(&mut *tx)
            .await
            .map_err(HandlerError::transient)?;
        }
        sqlx::query(
            "INSERT INTO ledger (product_id, applied, last_sequence, total) VALUES ($1, 1, $2, $2) \
             ON CONFLICT (product_id) DO UPDATE SET applied = ledger.applied + 1, \
             last_sequence = excluded.last_sequence, total = ledger.total + excluded.total",
        )
        .bind(&product_id)
        .bind(got)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::transient)?;
        Ok(())
    }
}
