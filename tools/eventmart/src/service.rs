//! `eventmart service`: a service's own state, rebuilt from the topics into a new version
//! while the service runs, compared with the live one by content checksum, and swapped in
//! while the service is stopped (see `eventmart_runtime::service::rebuild`).

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use eventmart_runtime::process::Connections;
use eventmart_runtime::projection::versions;
use eventmart_runtime::service::ServiceArgs;
use eventmart_runtime::service::rebuild::{self, STATE_TABLES, ServiceState};

use crate::versions::{
    Compare, Display, Subject, Which, args, checksum_of, list, on_terminal, open, verify,
};

/// The services whose state this tool rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Name {
    /// Customer accounts and their email claims.
    Users,
    /// Products, their prices and SKU claims.
    Catalog,
    /// Stock per product and reservations per order.
    Inventory,
    /// Orders, with replicas of users and prices.
    Orders,
    /// Payments per order and each customer's credit.
    Payments,
}

/// Which service, and where its main database is.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The service.
    #[arg(value_enum)]
    service: Name,
    /// The service's main database (the one it is started with); default
    /// `sqlite://var/<service>.db`.
    #[arg(long)]
    database_url: Option<String>,
}

/// How a rebuild reads and writes.
#[derive(Debug, Args)]
pub(crate) struct Pace {
    /// Records applied per database transaction.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: u32,
    /// How long the broker may hold a fetch when there is nothing to read.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    fetch_wait: Duration,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    plain: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// List the versions of a service's state: which is live, its position on the topics it
    /// is folded from, and where each one's database is.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Build a new version of the service's state from its topics while it keeps running on
    /// the live one, and catch up with the topics' end. Only facts are replayed; nothing is
    /// decided or published again. Run it again after an interruption and it resumes.
    Rebuild {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        pace: Pace,
    },
    /// Compare two versions' state row for row by content checksum; exits 1 if they differ.
    Verify {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        compare: Compare,
    },
    /// Print a version's position and the content checksum of each of its state tables.
    Checksum {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        which: Which,
    },
    /// Swap the version being built in for the live one. Every instance of the service must
    /// be stopped (and have published what it appended); the new version catches up first,
    /// then takes over the live one's positions on the topics the service reacts to, its
    /// idempotency keys and its timers. The service runs on it from its next start.
    Promote {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        pace: Pace,
    },
    /// Drop a version that is not live: its database, or its state tables for version 1.
    Drop {
        #[command(flatten)]
        target: Target,
        /// The version.
        version: i64,
    },
}

/// Runs `command`.
pub(crate) async fn run(conn: &Connections, command: ServiceCommand) -> anyhow::Result<()> {
    let name = match &command {
        ServiceCommand::List { target }
        | ServiceCommand::Rebuild { target, .. }
        | ServiceCommand::Verify { target, .. }
        | ServiceCommand::Checksum { target, .. }
        | ServiceCommand::Promote { target, .. }
        | ServiceCommand::Drop { target, .. } => target.service,
    };
    match name {
        Name::Users => on::<users::replay::State>(conn, command).await,
        Name::Catalog => on::<catalog::replay::State>(conn, command).await,
        Name::Inventory => on::<inventory::replay::State>(conn, command).await,
        Name::Orders => on::<orders::replay::State>(conn, command).await,
        Name::Payments => on::<payments::replay::State>(conn, command).await,
    }
}

/// Service `S`'s state as the version commands see it.
fn subject<S: ServiceState>() -> Subject {
    Subject {
        name: S::NAME,
        command: "service",
        migrations: S::migrations,
        tables: STATE_TABLES,
        topics: S::FACTS,
        group: rebuild::group,
    }
}

async fn on<S: ServiceState>(conn: &Connections, command: ServiceCommand) -> anyhow::Result<()> {
    let s = &subject::<S>();
    match command {
        ServiceCommand::List { target } => list(s, &args(conn, target.database_url, None)).await,
        ServiceCommand::Rebuild { target, pace } => {
            let args = args(conn, target.database_url, Some(pace.fetch_wait));
            build::<S>(&args, &pace).await
        }
        ServiceCommand::Verify { target, compare } => {
            verify(s, &args(conn, target.database_url, None), &compare).await
        }
        ServiceCommand::Checksum { target, which } => {
            checksum_of(s, &args(conn, target.database_url, None), &which).await
        }
        ServiceCommand::Promote { target, pace } => {
            let args = args(conn, target.database_url, Some(pace.fetch_wait));
            promote::<S>(&args, &pace).await
        }
        ServiceCommand::Drop { target, version } => {
            let args = args(conn, target.database_url, None);
            let (control, main_url) = open(s, &args).await?;
            versions::drop_version(
                &control.pool,
                S::NAME,
                version,
                &main_url,
                STATE_TABLES,
                true,
            )
            .await?;
            println!("{} version {version} dropped", S::NAME);
            Ok(())
        }
    }
}

async fn build<S: ServiceState>(args: &ServiceArgs, pace: &Pace) -> anyhow::Result<()> {
    let shutdown = eventmart_runtime::process::shutdown_on_signal();
    let mut display = Display::new(S::NAME, on_terminal(pace.plain));
    let outcome = rebuild::rebuild::<S>(
        args,
        pace.batch as usize,
        |p| display.update(p),
        shutdown.clone(),
    )
    .await;
    display.finish();
    let outcome = outcome?;
    let rate = outcome.records as f64 / outcome.elapsed.as_secs_f64().max(0.001);
    if shutdown.is_cancelled() {
        println!(
            "{} version {}: interrupted after {} records; the live state is untouched; run the \
             same command again to resume",
            S::NAME,
            outcome.version,
            outcome.records
        );
        anyhow::bail!("rebuild interrupted");
    }
    println!(
        "{} version {}: {}, {} records applied in {:.1}s ({rate:.0}/s), caught up",
        S::NAME,
        outcome.version,
        if outcome.resumed { "resumed" } else { "built" },
        outcome.records,
        outcome.elapsed.as_secs_f64()
    );
    println!(
        "compare it with `eventmart service verify {name}`; to run on it, stop {name}, run \
         `eventmart service promote {name}`, and start {name} again",
        name = S::NAME
    );
    Ok(())
}

async fn promote<S: ServiceState>(args: &ServiceArgs, pace: &Pace) -> anyhow::Result<()> {
    let shutdown = eventmart_runtime::process::shutdown_on_signal();
    let mut display = Display::new(S::NAME, on_terminal(pace.plain));
    let promoted = rebuild::promote::<S>(
        args,
        pace.batch as usize,
        |p| display.update(p),
        shutdown.clone(),
    )
    .await;
    display.finish();
    let promoted = promoted?;
    let carried: Vec<String> = promoted
        .carried
        .iter()
        .map(|(table, rows)| format!("{rows} {table}"))
        .collect();
    println!(
        "{} version {} is live (it replaces version {}): caught up by {} records; carried over \
         {}",
        S::NAME,
        promoted.version,
        promoted.replaced,
        promoted.caught_up,
        carried.join(", ")
    );
    println!(
        "start {name} again: it runs on version {}; drop version {} with `eventmart service drop \
         {name} {}` when you no longer need it",
        promoted.version,
        promoted.replaced,
        promoted.replaced,
        name = S::NAME
    );
    Ok(())
}
