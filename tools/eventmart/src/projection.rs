//! `eventmart projection`: a read model's versions: rebuild one from the topics while the
//! live one serves, compare two by content checksum, promote (or roll back) and drop.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use eventmart_runtime::consumer;
use eventmart_runtime::db::{self, Db};
use eventmart_runtime::process::Connections;
use eventmart_runtime::projection::checksum::{self, TableSum};
use eventmart_runtime::projection::rebuild::{self, Phase, Progress, RebuildOptions};
use eventmart_runtime::projection::versions::{self, Version, VersionState};
use eventmart_runtime::projection::{Projection, Table};
use eventmart_runtime::service::ServiceArgs;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

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
        /// One version (default: the live one).
        #[arg(long)]
        left: Option<i64>,
        /// The other (default: the newest other version that is not dropped).
        #[arg(long)]
        right: Option<i64>,
        /// How long to wait for both versions to reach the same position first.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        wait: Duration,
        /// Differing rows to print per table.
        #[arg(long, default_value_t = 10)]
        show: usize,
    },
    /// Print a version's position and the content checksum of each of its tables.
    Checksum {
        #[command(flatten)]
        target: Target,
        /// The version (default: the live one).
        #[arg(long)]
        version: Option<i64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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

async fn on<P: Projection>(conn: &Connections, command: ProjectionCommand) -> anyhow::Result<()> {
    match command {
        ProjectionCommand::List { target } => list::<P>(&args(conn, &target, None)).await,
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
            let args = args(conn, &target, Some(fetch_wait));
            run_rebuild::<P>(&args, &options, plain).await
        }
        ProjectionCommand::Verify {
            target,
            left,
            right,
            wait,
            show,
        } => verify::<P>(&args(conn, &target, None), left, right, wait, show).await,
        ProjectionCommand::Checksum {
            target,
            version,
            json,
        } => checksum_of::<P>(&args(conn, &target, None), version, json).await,
        ProjectionCommand::Promote { target, version } => {
            let (control, _) = open::<P>(&args(conn, &target, None)).await?;
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
            let args = args(conn, &target, None);
            let (control, main_url) = open::<P>(&args).await?;
            versions::drop_version(&control.pool, P::NAME, version, &main_url, P::TABLES, force)
                .await?;
            println!("{} version {version} dropped", P::NAME);
            Ok(())
        }
    }
}

/// The settings a read model's process would run with.
fn args(conn: &Connections, target: &Target, fetch_wait: Option<Duration>) -> ServiceArgs {
    ServiceArgs {
        connections: conn.clone(),
        database_url: target.database_url.clone(),
        listen: None,
        grace: Duration::from_secs(10),
        session_timeout: Duration::from_secs(6),
        fetch_wait: fetch_wait.unwrap_or(Duration::from_millis(100)),
    }
}

/// The read model's main database, opened and migrated, and its URL.
async fn open<P: Projection>(args: &ServiceArgs) -> anyhow::Result<(Db, String)> {
    let url = args.database_url(P::NAME);
    let control = db::connect_component(&url, P::migrations())
        .await
        .with_context(|| format!("opening {url}"))?;
    versions::ensure_first(&control.pool, P::NAME, &url).await?;
    Ok((control, url))
}

/// A version's database (the main one for version 1).
async fn open_version<P: Projection>(
    control: &Db,
    main_url: &str,
    version: &Version,
) -> anyhow::Result<Db> {
    if version.state == VersionState::Dropped {
        bail!("{} version {} has been dropped", P::NAME, version.number);
    }
    if version.database_url == main_url {
        return Ok(control.clone());
    }
    Ok(db::connect_component(&version.database_url, P::migrations()).await?)
}

/// A version's position: records applied, summed over partitions.
async fn position(db: &Db, version: &Version) -> anyhow::Result<i64> {
    Ok(consumer::stored_offsets(&db.pool, &version.group())
        .await?
        .values()
        .sum())
}

async fn list<P: Projection>(args: &ServiceArgs) -> anyhow::Result<()> {
    let (control, main_url) = open::<P>(args).await?;
    let served = versions::served(&control.pool, P::NAME).await?;
    let mut out = format!(
        "{:<8} {:<9} {:<7} {:>10}  {:<20} database\n",
        "version", "state", "served", "position", "promoted"
    );
    for version in versions::list(&control.pool, P::NAME).await? {
        let position = match version.state {
            VersionState::Dropped => "-".to_owned(),
            _ => {
                let db = open_version::<P>(&control, &main_url, &version).await?;
                position(&db, &version).await?.to_string()
            }
        };
        out.push_str(&format!(
            "{:<8} {:<9} {:<7} {:>10}  {:<20} {}\n",
            version.number,
            version.state,
            if served == Some(version.number) {
                "yes"
            } else {
                ""
            },
            position,
            version.promoted_at.map_or("-".to_owned(), |t| t
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()),
            version.database_url
        ));
    }
    print(&out)
}

async fn run_rebuild<P: Projection>(
    args: &ServiceArgs,
    options: &RebuildOptions,
    plain: bool,
) -> anyhow::Result<()> {
    let shutdown = eventmart_runtime::process::shutdown_on_signal();
    let mut display = Display::new(P::NAME, !plain && std::io::stderr().is_terminal());
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

/// Progress on a terminal (a bar with rate and ETA) or as plain lines every second.
struct Display {
    name: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Option<Instant>,
    first_done: Option<u64>,
}

impl Display {
    fn new(name: &'static str, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:40}] {pos}/{len} events  {per_sec}  ETA {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(name);
            bar
        });
        Self {
            name,
            bar,
            started: Instant::now(),
            last_line: None,
            first_done: None,
        }
    }

    fn update(&mut self, progress: &Progress) {
        let phase = match progress.phase {
            Phase::Replaying => "replaying",
            Phase::HandingOver => "promoted; waiting for the query API to switch",
        };
        if let Some(bar) = &self.bar {
            bar.set_length(progress.total);
            bar.set_position(progress.done);
            bar.set_message(format!("v{} {phase}", progress.version));
            return;
        }
        let first = *self.first_done.get_or_insert(progress.done);
        if self
            .last_line
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        self.last_line = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = progress.done.saturating_sub(first) as f64 / elapsed;
        let left = progress.total.saturating_sub(progress.done);
        let eta = if rate > 0.0 {
            humantime::format_duration(Duration::from_secs((left as f64 / rate) as u64)).to_string()
        } else {
            "unknown".to_owned()
        };
        eprintln!(
            "{} v{}: {}/{} events, {rate:.0}/s, ETA {eta}, {phase}",
            self.name, progress.version, progress.done, progress.total
        );
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

async fn verify<P: Projection>(
    args: &ServiceArgs,
    left: Option<i64>,
    right: Option<i64>,
    wait: Duration,
    show: usize,
) -> anyhow::Result<()> {
    let (control, main_url) = open::<P>(args).await?;
    let all = versions::list(&control.pool, P::NAME).await?;
    let left = match left {
        Some(n) => versions::get(&control.pool, P::NAME, n).await?,
        None => versions::live(&control.pool, P::NAME).await?,
    };
    let right = match right {
        Some(n) => versions::get(&control.pool, P::NAME, n).await?,
        None => all
            .iter()
            .rev()
            .find(|v| v.number != left.number && v.state != VersionState::Dropped)
            .cloned()
            .with_context(|| {
                format!(
                    "{} has no other version to compare with; rebuild it first",
                    P::NAME
                )
            })?,
    };
    let (a, b) = (
        open_version::<P>(&control, &main_url, &left).await?,
        open_version::<P>(&control, &main_url, &right).await?,
    );
    let until = Instant::now() + wait;
    let (pa, pb) = loop {
        let pa = consumer::stored_offsets(&a.pool, &left.group()).await?;
        let pb = consumer::stored_offsets(&b.pool, &right.group()).await?;
        if pa == pb || Instant::now() >= until {
            break (pa, pb);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (sa, sb) = (
        checksum::checksums(&a, P::TABLES).await?,
        checksum::checksums(&b, P::TABLES).await?,
    );
    println!(
        "{}: version {} ({}) against version {} ({})",
        P::NAME,
        left.number,
        left.state,
        right.number,
        right.state
    );
    if pa != pb {
        println!(
            "note: the versions are at different positions ({} and {} records); rows the \
             later events changed differ for that reason",
            pa.values().sum::<i64>(),
            pb.values().sum::<i64>()
        );
    }
    let mut same = true;
    for (x, y) in sa.iter().zip(&sb) {
        let verdict = if x == y { "same" } else { "DIFFERENT" };
        same &= x == y;
        println!(
            "  {:<20} {:>8} rows {}  {:>8} rows {}  {verdict}",
            x.table,
            x.rows,
            short(x),
            y.rows,
            short(y)
        );
    }
    if same {
        println!("identical");
        return Ok(());
    }
    let differing: Vec<Table> = P::TABLES
        .iter()
        .zip(sa.iter().zip(&sb))
        .filter(|(_, (x, y))| x != y)
        .map(|(t, _)| *t)
        .collect();
    for diff in checksum::differences(&a, &b, &differing, show).await? {
        println!("  {} {}", diff.table, diff.key);
        println!(
            "    v{}: {}",
            left.number,
            diff.left.as_deref().unwrap_or("(missing)")
        );
        println!(
            "    v{}: {}",
            right.number,
            diff.right.as_deref().unwrap_or("(missing)")
        );
    }
    bail!("the versions differ")
}

fn short(sum: &TableSum) -> &str {
    &sum.sha256[..16]
}

async fn checksum_of<P: Projection>(
    args: &ServiceArgs,
    version: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let (control, main_url) = open::<P>(args).await?;
    let version = match version {
        Some(n) => versions::get(&control.pool, P::NAME, n).await?,
        None => versions::live(&control.pool, P::NAME).await?,
    };
    let db = open_version::<P>(&control, &main_url, &version).await?;
    let position = position(&db, &version).await?;
    let sums = checksum::checksums(&db, P::TABLES).await?;
    let mut out = String::new();
    if json {
        out = json!({
            "projection": P::NAME,
            "version": version.number,
            "state": version.state.as_str(),
            "position": position,
            "tables": sums,
        })
        .to_string();
        out.push('\n');
    } else {
        out.push_str(&format!(
            "{} version {} ({}), position {position}\n",
            P::NAME,
            version.number,
            version.state
        ));
        for sum in &sums {
            out.push_str(&format!(
                "  {:<20} {:>8} rows  {}\n",
                sum.table, sum.rows, sum.sha256
            ));
        }
    }
    print(&out)
}

/// Writes `text` to standard output; a reader that stopped reading (`| head`) is no error.
fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected a time like 2026-11-26T09:00:00Z: {e}"))
}
