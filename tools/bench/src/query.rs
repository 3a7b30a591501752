//! `eventmart-bench query`: the order view's query API under load, against the same
//! process's liveness endpoint in the same run.
//!
//! A fresh local broker (Tansu/SQLite) and registry get a backlog of finished sagas; the
//! real `order-view` release binary applies all of it; then `wrk` requests
//! `GET /orders/{id}`, cycling through every order of the backlog, and, as the baseline,
//! `GET /health/live` of the same process (HTTP, routing and JSON with no database read),
//! with the same threads, connections and duration. Each run follows a short warm-up that
//! is not counted.
//!
//! It needs `wrk` (`apt-get install wrk`), the release binaries of `order-view` and the
//! schema registry next to it, `tansu` on the PATH, and for the PostgreSQL figures a
//! PostgreSQL server.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventmart_runtime::consumer;
use eventmart_runtime::projection::Projection;
use eventmart_runtime::testing::{TestDatabase, TestProcess, free_port};
use sqlx::any::AnyPoolOptions;
use tokio::process::Command;

use crate::Engines;
use crate::backlog::Backlog;

/// Requests per second the order API should serve.
const TARGET_RPS: f64 = 10_000.0;

/// The 99th percentile latency it should stay under, in milliseconds.
const TARGET_P99_MS: f64 = 10.0;

/// How long the view may take to apply the backlog.
const CATCH_UP_MAX: Duration = Duration::from_secs(600);

/// How long each endpoint is loaded before it is measured.
const WARM_UP: Duration = Duration::from_secs(2);

/// What to measure, and how much.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Sagas in the backlog the view serves (five events each; one order each).
    #[arg(long, default_value_t = 2_000)]
    orders: u32,
    /// How long each measured wrk run lasts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Open HTTP connections (wrk -c).
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk threads (wrk -t).
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// The view's database engines.
    #[arg(long, value_enum, default_value = "sqlite")]
    engine: Engines,
    /// How long the broker may hold the view's fetch when there is nothing to read.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    fetch_wait: Duration,
    /// The wrk program.
    #[arg(long, env = "EVENTMART_WRK", default_value = "wrk")]
    wrk: PathBuf,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let wrk = find_program(&args.wrk).with_context(|| {
        format!(
            "{} is not installed: apt-get install wrk (or give its path with --wrk)",
            args.wrk.display()
        )
    })?;
    if args.threads == 0 || args.connections < args.threads {
        bail!("wrk needs at least one thread and at least one connection per thread");
    }
    println!(
        "query on a fresh local broker (Tansu/SQLite): {} sagas, writing them ...",
        args.orders
    );
    let backlog = Backlog::start(args.orders).await?;
    println!(
        "  {} events written; wrk: {} threads, {} connections, {:?} per run",
        backlog.events, args.threads, args.connections, args.duration
    );
    let script = tempfile::tempdir()?;
    let orders_lua = script.path().join("orders.lua");
    std::fs::write(&orders_lua, orders_script(&backlog))?;

    for engine in args.engine.list() {
        println!("\n[{}]", crate::engine_name(engine));
        let database = TestDatabase::create(engine).await?;
        let (process, base, caught_up) = start_view(&backlog, &database, &args).await?;
        println!(
            "  order-view applied {} events in {:.1} s (start-up and group join included)",
            backlog.events,
            caught_up.as_secs_f64()
        );
        let load = Load {
            wrk: &wrk,
            args: &args,
        };
        let orders = load
            .measure(&base, Some(&orders_lua))
            .await
            .map_err(|e| e.context(process.log()))?;
        let live = load
            .measure(&format!("{base}/health/live"), None)
            .await
            .map_err(|e| e.context(process.log()))?;
        orders.print("GET /orders/{id}", Some(&live));
        live.print("GET /health/live (baseline)", None);
        println!(
            "  targets: >= {TARGET_RPS:.0} req/s ({}), p99 < {TARGET_P99_MS} ms ({})",
            if orders.requests_per_sec >= TARGET_RPS {
                "met"
            } else {
                "not met"
            },
            if orders.p99_ms < TARGET_P99_MS {
                "met"
            } else {
                "not met"
            },
        );
        drop(process);
    }
    Ok(())
}

/// A Lua script for wrk that requests every order of the backlog in turn (each thread
/// starts at a different one).
fn orders_script(backlog: &Backlog) -> String {
    let mut script = String::from("local ids = {\n");
    for order in &backlog.orders {
        let _ = writeln!(script, "  \"{order}\",");
    }
    script.push_str(
        "}\n\
         local n = 0\n\
         setup = function(thread)\n  \
           thread:set(\"first\", math.random(#ids))\n\
         end\n\
         init = function(args)\n  \
           n = first or 0\n\
         end\n\
         request = function()\n  \
           n = n % #ids + 1\n  \
           return wrk.format(\"GET\", \"/orders/\" .. ids[n])\n\
         end\n",
    );
    script
}

/// Starts the `order-view` binary on the backlog with `database`, and waits until it has
/// applied every event. Returns the process, its base URL and how long that took.
async fn start_view(
    backlog: &Backlog,
    database: &TestDatabase,
    args: &Args,
) -> anyhow::Result<(TestProcess, String, Duration)> {
    let listen = format!("127.0.0.1:{}", free_port()?);
    let fetch_wait = format!("{}ms", args.fetch_wait.as_millis());
    let started = Instant::now();
    let mut process = TestProcess::spawn(
        "order-view",
        &[],
        &[
            (
                "EVENTMART_BOOTSTRAP_SERVERS",
                backlog.broker.bootstrap.as_str(),
            ),
            ("EVENTMART_REGISTRY_URL", backlog.registry.url.as_str()),
            ("EVENTMART_TOPIC_PREFIX", backlog.prefix.as_str()),
            ("DATABASE_URL", database.url.as_str()),
            ("EVENTMART_LISTEN", listen.as_str()),
            ("EVENTMART_FETCH_WAIT", fetch_wait.as_str()),
            // The binary's own default, whatever this process was started with.
            ("RUST_LOG", "info"),
        ],
    )?;
    let base = format!("http://{listen}");
    process
        .wait_http_ok(&format!("{base}/health/ready"), Duration::from_secs(120))
        .await?;
    // The view's own database says how far it has got (version 1's group is the read
    // model's name).
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&database.url)
        .await
        .with_context(|| format!("opening {}", database.url))?;
    let topics = backlog.names(order_view::ReadModel::TOPICS);
    let ends = backlog.ends_of(&topics);
    loop {
        let reached = consumer::stored_offsets(&pool, order_view::NAME).await?;
        let behind = ends
            .iter()
            .any(|(p, end)| reached.get(p).copied().unwrap_or(0) < *end);
        if !behind {
            break;
        }
        if started.elapsed() > CATCH_UP_MAX {
            bail!(
                "order-view did not apply the backlog within {CATCH_UP_MAX:?}:\n{}",
                process.log()
            );
        }
        if process.exited_successfully()? {
            bail!(
                "order-view exited before applying the backlog:\n{}",
                process.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caught_up = started.elapsed();
    pool.close().await;
    Ok((process, base, caught_up))
}

/// wrk with the benchmark's settings.
struct Load<'a> {
    wrk: &'a Path,
    args: &'a Args,
}

impl Load<'_> {
    /// A warm-up, then a measured run against `url` (with `script`, if any).
    async fn measure(&self, url: &str, script: Option<&Path>) -> anyhow::Result<Report> {
        self.wrk(url, script, WARM_UP).await?;
        self.wrk(url, script, self.args.duration).await
    }

    async fn wrk(
        &self,
        url: &str,
        script: Option<&Path>,
        duration: Duration,
    ) -> anyhow::Result<Report> {
        let mut command = Command::new(self.wrk);
        command
            .arg(format!("-t{}", self.args.threads))
            .arg(format!("-c{}", self.args.connections))
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .arg("--latency")
            .kill_on_drop(true);
        if let Some(script) = script {
            command.arg("-s").arg(script);
        }
        let output = command
            .arg(url)
            .output()
            .await
            .with_context(|| format!("running {}", self.wrk.display()))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "wrk failed ({}):\n{text}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Report::parse(&text).with_context(|| format!("reading wrk's report:\n{text}"))
    }
}

/// What wrk reported.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    requests: u64,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers that were not 2xx or 3xx.
    failed: u64,
    /// wrk's socket error line, if any.
    socket_errors: Option<String>,
}

impl Report {
    /// Reads wrk's `--latency` output.
    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut report = Report {
            requests: 0,
            requests_per_sec: f64::NAN,
            p50_ms: f64::NAN,
            p99_ms: f64::NAN,
            failed: 0,
            socket_errors: None,
        };
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["Requests/sec:", rate] => report.requests_per_sec = rate.parse()?,
                ["50%", latency] => report.p50_ms = millis(latency)?,
                ["99%", latency] => report.p99_ms = millis(latency)?,
                [count, "requests", "in", ..] => report.requests = count.parse()?,
                ["Non-2xx", "or", "3xx", "responses:", count] => report.failed = count.parse()?,
                ["Socket", "errors:", ..] => report.socket_errors = Some(line.to_owned()),
                _ => {}
            }
        }
        if report.requests_per_sec.is_nan() || report.p99_ms.is_nan() {
            bail!("no Requests/sec or 99% line");
        }
        Ok(report)
    }

    fn print(&self, what: &str, baseline: Option<&Report>) {
        let ratio = baseline.map_or(String::new(), |base| {
            format!(
                "   {:.2} of baseline req/s, p99 {:.1} x baseline",
                self.requests_per_sec / base.requests_per_sec.max(1e-9),
                self.p99_ms / base.p99_ms.max(1e-9)
            )
        });
        println!(
            "  {what:<28} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms{ratio}",
            self.requests_per_sec, self.p50_ms, self.p99_ms
        );
        if self.failed > 0 {
            println!(
                "    warning: {} of {} answers were not 2xx/3xx",
                self.failed, self.requests
            );
        }
        if let Some(errors) = &self.socket_errors {
            println!("    {errors}");
        }
    }
}

/// A wrk duration (`812.00us`, `1.20ms`, `2.01s`, `1.00m`) in milliseconds.
fn millis(text: &str) -> anyhow::Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("{text:?} has no unit"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration"))?;
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => bail!("{text:?} has an unknown unit"),
    };
    Ok(value * scale)
}

/// `program` itself if it is a path, else the first match on the PATH.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "\
Running 10s test @ http://127.0.0.1:40000
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.05ms    1.10ms  31.20ms   80.00%
    Req/Sec    10.52k   812.34    12.10k    70.00%
  Latency Distribution
     50%    2.87ms
     75%    3.40ms
     90%    4.10ms
     99%  812.00us
  209450 requests in 10.01s, 150.12MB read
  Non-2xx or 3xx responses: 12
Requests/sec:  20924.31
Transfer/sec:     15.00MB
";

    #[test]
    fn wrk_rate_percentiles_and_failures_are_read_from_its_report() {
        let report = Report::parse(WRK_OUTPUT).unwrap();
        assert_eq!(report.requests, 209_450);
        assert!((report.requests_per_sec - 20_924.31).abs() < 1e-6);
        assert!((report.p50_ms - 2.87).abs() < 1e-9);
        assert!((report.p99_ms - 0.812).abs() < 1e-9);
        assert_eq!(report.failed, 12);
        assert_eq!(report.socket_errors, None);
    }

    #[test]
    fn a_report_without_a_rate_is_refused() {
        assert!(Report::parse("Running 10s test @ http://x\n").is_err());
    }

    #[test]
    fn wrk_durations_are_converted_to_milliseconds() {
        assert_eq!(millis("1.50ms").unwrap(), 1.5);
        assert_eq!(millis("2.00s").unwrap(), 2_000.0);
        assert_eq!(millis("1.00m").unwrap(), 60_000.0);
        assert!((millis("250.00us").unwrap() - 0.25).abs() < 1e-12);
        assert!(millis("12").is_err());
    }
}
