//! What `eventmart projection` and `eventmart service` share: a subject with versions (a
//! read model, or a service's own state), listed, compared by content checksum, and rebuilt
//! with a progress display.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventmart_events::Topic;
use eventmart_runtime::consumer;
use eventmart_runtime::db::{self, Db, Migrations};
use eventmart_runtime::process::Connections;
use eventmart_runtime::projection::Table;
use eventmart_runtime::projection::checksum::{self, TableSum};
use eventmart_runtime::projection::rebuild::{Phase, Progress};
use eventmart_runtime::projection::versions::{self, Version, VersionState};
use eventmart_runtime::service::ServiceArgs;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Something with versions, as these commands see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject {
    /// Its name.
    pub(crate) name: &'static str,
    /// The command that manages it: `projection` or `service`.
    pub(crate) command: &'static str,
    /// Its migrations, beside the runtime's.
    pub(crate) migrations: fn() -> Migrations,
    /// The tables a checksum covers.
    pub(crate) tables: &'static [Table],
    /// The topics whose positions two versions are compared at.
    pub(crate) topics: &'static [Topic],
    /// The consumer group that holds a version's positions.
    pub(crate) group: fn(&Version) -> String,
}

/// Which two versions `verify` compares, and how.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Compare {
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
}

/// Which version `checksum` reads, and how it prints.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Which {
    /// The version (default: the live one).
    #[arg(long)]
    version: Option<i64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Whether progress goes to a terminal as a bar.
pub(crate) fn on_terminal(plain: bool) -> bool {
    !plain && std::io::stderr().is_terminal()
}

/// The settings the read model's or service's process would run with.
pub(crate) fn args(
    conn: &Connections,
    database_url: Option<String>,
    fetch_wait: Option<Duration>,
) -> ServiceArgs {
    ServiceArgs {
        connections: conn.clone(),
        database_url,
        listen: None,
        grace: Duration::from_secs(10),
        session_timeout: Duration::from_secs(6),
        fetch_wait: fetch_wait.unwrap_or(Duration::from_millis(100)),
        park_budget: Duration::from_secs(600),
        dedup_retention: Duration::from_secs(30 * 24 * 3600),
        idempotency_retention: Duration::from_secs(24 * 3600),
    }
}

/// The read model's main database, opened and migrated, and its URL.
pub(crate) async fn open(s: &Subject, args: &ServiceArgs) -> anyhow::Result<(Db, String)> {
    let url = args.database_url(s.name);
    let control = db::connect_component(&url, (s.migrations)())
        .await
        .with_context(|| format!("opening {url}"))?;
    versions::ensure_first(&control.pool, s.name, &url).await?;
    Ok((control, url))
}

/// Where a version stands in each partition of the subject's topics.
async fn positions(
    s: &Subject,
    args: &ServiceArgs,
    db: &Db,
    version: &Version,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let names = args.connections.topics();
    let topics: Vec<String> = s.topics.iter().map(|t| names.name(*t)).collect();
    Ok(consumer::stored_offsets(&db.pool, &(s.group)(version))
        .await?
        .into_iter()
        .filter(|((topic, _), _)| topics.contains(topic))
        .collect())
}

/// A version's position: records applied, summed over partitions.
async fn position(
    s: &Subject,
    args: &ServiceArgs,
    db: &Db,
    version: &Version,
) -> anyhow::Result<i64> {
    Ok(positions(s, args, db, version).await?.values().sum())
}

pub(crate) async fn list(s: &Subject, args: &ServiceArgs) -> anyhow::Result<()> {
    let (control, main_url) = open(s, args).await?;
    // A query API records which version it serves; a service just starts on the live one.
    let served = versions::served(&control.pool, s.name).await?;
    let api = s.command == "projection";
    let mut out = if api {
        format!(
            "{:<8} {:<9} {:<7} {:>10}  {:<20} database\n",
            "version", "state", "served", "position", "promoted"
        )
    } else {
        format!(
            "{:<8} {:<9} {:>10}  {:<20} database\n",
            "version", "state", "position", "promoted"
        )
    };
    for version in versions::list(&control.pool, s.name).await? {
        let position = match version.state {
            VersionState::Dropped => "-".to_owned(),
            _ => {
                let db = versions::open(&control, &main_url, &version, s.migrations).await?;
                position(s, args, &db, &version).await?.to_string()
            }
        };
        let promoted = version.promoted_at.map_or("-".to_owned(), |t| {
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        });
        let served = if served == Some(version.number) {
            "yes"
        } else {
            ""
        };
        let (number, state, url) = (version.number, version.state, &version.database_url);
        out.push_str(&if api {
            format!("{number:<8} {state:<9} {served:<7} {position:>10}  {promoted:<20} {url}\n")
        } else {
            format!("{number:<8} {state:<9} {position:>10}  {promoted:<20} {url}\n")
        });
    }
    print(&out)
}

/// Progress on a terminal (a bar with rate and ETA) or as plain lines every second.
pub(crate) struct Display {
    name: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Option<Instant>,
    first_done: Option<u64>,
}

impl Display {
    pub(crate) fn new(name: &'static str, terminal: bool) -> Self {
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

    pub(crate) fn update(&mut self, progress: &Progress) {
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

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

pub(crate) async fn verify(
    s: &Subject,
    args: &ServiceArgs,
    compare: &Compare,
) -> anyhow::Result<()> {
    let Compare {
        left,
        right,
        wait,
        show,
    } = *compare;
    let (control, main_url) = open(s, args).await?;
    let all = versions::list(&control.pool, s.name).await?;
    let left = match left {
        Some(n) => versions::get(&control.pool, s.name, n).await?,
        None => versions::live(&control.pool, s.name).await?,
    };
    let right = match right {
        Some(n) => versions::get(&control.pool, s.name, n).await?,
        None => all
            .iter()
            .rev()
            .find(|v| v.number != left.number && v.state != VersionState::Dropped)
            .cloned()
            .with_context(|| {
                format!(
                    "{name} has no other version to compare with; build one with `eventmart \
                     {command} rebuild {name}` first",
                    name = s.name,
                    command = s.command
                )
            })?,
    };
    let (a, b) = (
        versions::open(&control, &main_url, &left, s.migrations).await?,
        versions::open(&control, &main_url, &right, s.migrations).await?,
    );
    let until = Instant::now() + wait;
    let (pa, pb) = loop {
        let pa = positions(s, args, &a, &left).await?;
        let pb = positions(s, args, &b, &right).await?;
        if pa == pb || Instant::now() >= until {
            break (pa, pb);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (sa, sb) = (
        checksum::checksums(&a, s.tables).await?,
        checksum::checksums(&b, s.tables).await?,
    );
    println!(
        "{}: version {} ({}) against version {} ({})",
        s.name, left.number, left.state, right.number, right.state
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
    let differing: Vec<Table> = s
        .tables
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

pub(crate) async fn checksum_of(
    s: &Subject,
    args: &ServiceArgs,
    which: &Which,
) -> anyhow::Result<()> {
    let Which { version, json } = *which;
    let (control, main_url) = open(s, args).await?;
    let version = match version {
        Some(n) => versions::get(&control.pool, s.name, n).await?,
        None => versions::live(&control.pool, s.name).await?,
    };
    let db = versions::open(&control, &main_url, &version, s.migrations).await?;
    let position = position(s, args, &db, &version).await?;
    let sums = checksum::checksums(&db, s.tables).await?;
    let mut out = String::new();
    if json {
        out = json!({
            "name": s.name,
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
            s.name, version.number, version.state
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
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

pub(crate) fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("expected a time like 2026-11-26T09:00:00Z: {e}"))
}
