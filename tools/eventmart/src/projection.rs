//! `eventmart projection`: a read model's versions: rebuild one from the topics while the
//! live one serves, compare two by content checksum, promote (or roll back) and drop.

use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use eventmart_runtime::process::Connections;
use eventmart_runtime::projection::Projection;
use eventmart_runtime::projection::rebuild::{self, RebuildOptions};
use eventmart_runtime::projection::versions::{self, Version, VersionState};
use eventmart_runtime::service::ServiceArgs;

use crate::versions::{
    Compare, Display, Subject, Which, args, checksum_of, list, on_terminal, open, parse_time,
    verify,
};

/// The read models this tool knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Model {
    /// Orders with their saga timeline, and each customer's orders.
    OrderView,
    /// Each product's price and stock available, reserved and sold.
    ProductAvailability,
    /// Revenue and units per product and per day.
    Sales,
    /// Every order saga's steps and where it stands.
    SagaTracker,
}

/// Which read model, and where its main database is.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The read model.
    #[arg(value_enum)]
    model: Model,
    /// The read model's main database (the one its query API was started with); default
    /// `sqlite://var/<read model>.db`.
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectionCommand {
    /// List a read model's versions: state, position and where each one's tables are.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Build a new version from the topics while the live one keeps serving; promote it
    /// once it has caught up, so the running query API switches to it. Run it again after an
    /// interruption and it resumes where it stopped.
    Rebuild {
        #[command(flatten)]
        target: Target,
        /// Read from this time (RFC 3339, e.g. 2026-11-26T09:00:00Z) instead of the
        /// beginning of the topics.
        #[arg(long, value_parser = parse_time)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Build and catch up, but leave the version `building` instead of promoting it.
        #[arg(long)]
        no_promote: bool,
        /// How long to keep following after promoting, for the running query API to switch.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        handover: Duration,
        /// Records applied per database transaction.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
        /// How long the broker may hold a fetch when there is nothing to read.
        #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
        fetch_wait: Duration,
        /// Plain progress lines even on a terminal.
        #[arg(long)]
        plain: bool,
    },
    /// Compare two versions row for row by content checksum; exits 1 if they differ.
    Verify {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        compare: Compare,
    },
    /// Print a version's position and the content checksum of each of its tables.
    Checksum {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        which: Which,
    },
    /// Make a version live (the running query API switches to it once it has caught up):
    /// how to roll back to a retired version.
    Promote {
        #[command(flatten)]
        target: Target,
        /// The version.
        version: i64,
    },
    /// Drop a version that is neither live nor served: its database, or its tables for
    /// version 1.
    Drop {
        #[command(flatten)]
        target: Target,
        /// The version.
        version: i64,
        /// Drop it even if it is recorded as the one the query API serves (when the read
        /// model is not running, and so cannot record its switch).
        #[arg(long)]
        force: bool,
    },
}

/// Runs `command`.
pub(crate) async fn run(conn: &Connections, command: ProjectionCommand) -> anyhow::Result<()> {
    let model = match &command {
        ProjectionCommand::List { target }
        | ProjectionCommand::Rebuild { target, .. }
        | ProjectionCommand::Verify { target, .. }
        | ProjectionCommand::Checksum { target, .. }
        | ProjectionCommand::Promote { target, .. }
        | ProjectionCommand::Drop { target, .. } => target.model,
    };
    match model {
        Model::OrderView => on::<order_view::ReadModel>(conn, command).await,
        Model::ProductAvailability => on::<product_availability::ReadModel>(conn, command).await,
        Model::Sales => on::<sales::ReadModel>(conn, command).await,
        Model::SagaTracker => on::<saga_tracker::ReadModel>(conn, command).await,
    }
}

/// Read model `P` as the version commands see it.
fn subject<P: Projection>() -> Subject {
    Subject {
        name: P::NAME,
        command: "projection",
        migrations: P::migrations,
        tables: P::TABLES,
        topics: P::TOPICS,
        group: Version::group,
    }
}

async fn on<P: Projection>(conn: &Connections, command: ProjectionCommand) -> anyhow::Result<()> {
    let s = &subject::<P>();
    match command {
        ProjectionCommand::List { target } => list(s, &args(conn, target.database_url, None)).await,
        ProjectionCommand::Rebuild {
            target,
            from,
            no_promote,
            handover,
            batch,
            fetch_wait,
            plain,
        } => {
            let options = RebuildOptions {
                from,
                promote: !no_promote,
                handover,
                batch_max: batch as usize,
            };
            let args = args(conn, target.database_url, Some(fetch_wait));
            run_rebuild::<P>(&args, &options, plain).await
        }
        ProjectionCommand::Verify { target, compare } => {
            verify(s, &args(conn, target.database_url, None), &compare).await
        }
        ProjectionCommand::Checksum { target, which } => {
            checksum_of(s, &args(conn, target.database_url, None), &which).await
        }
        ProjectionCommand::Promote { target, version } => {
            let (control, _) = open(s, &args(conn, target.database_url, None)).await?;
            let promoted = versions::get(&control.pool, P::NAME, version).await?;
            if promoted.state == VersionState::Building {
                bail!(
                    "version {version} is still being built; run `eventmart projection rebuild {}` \
                     to finish and promote it",
                    P::NAME
                );
            }
            versions::promote(&control.pool, P::NAME, version).await?;
            println!(
                "{} version {version} is live; a running query API switches to it once it has \
                 caught up",
                P::NAME
            );
            Ok(())
        }
        ProjectionCommand::Drop {
            target,
            version,
            force,
        } => {
            let args = args(conn, target.database_url, None);
            let (control, main_url) = open(s, &args).await?;
            versions::drop_version(&control.pool, P::NAME, version, &main_url, P::TABLES, force)
                .await?;
            println!("{} version {version} dropped", P::NAME);
            Ok(())
        }
    }
}

async fn run_rebuild<P: Projection>(
    args: &ServiceArgs,
    options: &RebuildOptions,
    plain: bool,
) -> anyhow::Result<()> {
    let shutdown = eventmart_runtime::process::shutdown_on_signal();
    let mut display = Display::new(P::NAME, on_terminal(plain));
    let outcome =
        rebuild::rebuild::<P>(args, options, |p| display.update(p), shutdown.clone()).await;
    display.finish();
    let outcome = outcome?;
    let rate = outcome.records as f64 / outcome.elapsed.as_secs_f64().max(0.001);
    let interrupted = shutdown.is_cancelled();
    let how = match (interrupted && !outcome.promoted, outcome.resumed) {
        (true, _) => "interrupted",
        (false, true) => "resumed",
        (false, false) => "built",
    };
    println!(
        "{} version {}: {how}, {} records applied in {:.1}s ({rate:.0}/s)",
        P::NAME,
        outcome.version,
        outcome.records,
        outcome.elapsed.as_secs_f64()
    );
    if interrupted && !outcome.promoted {
        println!(
            "interrupted: the live version is untouched; run the same command again to resume"
        );
        bail!("rebuild interrupted");
    }
    match (outcome.promoted, outcome.served) {
        (true, true) => println!(
            "promoted: the query API now serves version {}; drop the old one with \
             `eventmart projection drop {} <version>` when you no longer need it",
            outcome.version,
            P::NAME
        ),
        (true, false) if interrupted => println!(
            "promoted: version {} is live; the running query API switches to it on its own \
             (`eventmart projection list` shows when)",
            outcome.version
        ),
        (true, false) => println!(
            "promoted: no running query API switched within the handover; it serves version {} \
             when it starts",
            outcome.version
        ),
        (false, _) => println!(
            "caught up and left building (--no-promote); run the rebuild again to promote it"
        ),
    }
    Ok(())
}
