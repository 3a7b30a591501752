//! `eventmart-bench`: measures the system against the broker it runs on. Every figure is
//! printed beside a raw baseline measured in the same run on the same broker, because the
//! absolute numbers move with the machine and the broker; the ratio is what to compare.
//!
//! `runtime` needs a broker and a schema registry (`scripts/up` starts both); the others
//! start their own. The PostgreSQL figures need a PostgreSQL server; each run uses fresh
//! topics and databases.

mod backlog;
mod cpu;
mod faults;
mod query;
mod rebuild;
mod runtime;
mod saga;

use clap::{Parser, Subcommand};
use eventmart_runtime::db::Engine;
use eventmart_runtime::process::Connections;

/// Benchmarks of eventmart, as ratios to raw Kafka clients on the same broker.
#[derive(Debug, Parser)]
#[command(name = "eventmart-bench", version, about)]
struct Cli {
    #[command(flatten)]
    connections: Connections,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The event runtime: append + relay, exactly-once consumers, relay latency.
    Runtime(runtime::Args),
    /// The order saga through all five services: orders per second and saga latency,
    /// beside the broker's raw round trip (starts its own broker and services).
    Saga(saga::Args),
    /// Rebuilding a read model from the topics, beside a raw read of the same topics
    /// (starts its own broker; `-X` settings apply to the rebuild's clients).
    Rebuild(rebuild::Args),
    /// A long fault schedule: orders while every part of the system is killed at random
    /// (starts its own broker and services); prints the invariants and the saga latency.
    Faults(faults::Args),
    /// The order view's query API under wrk, beside the same process's liveness endpoint
    /// (starts its own broker and the order-view binary).
    Query(query::Args),
}

/// Which database engines a benchmark measures.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Engines {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL database.
    Postgres,
    /// SQLite, then PostgreSQL.
    Both,
}

impl Engines {
    fn list(self) -> Vec<Engine> {
        match self {
            Engines::Sqlite => vec![Engine::Sqlite],
            Engines::Postgres => vec![Engine::Postgres],
            Engines::Both => vec![Engine::Sqlite, Engine::Postgres],
        }
    }
}

/// How the reports name an engine.
fn engine_name(engine: Engine) -> &'static str {
    match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        eventmart_runtime::process::init_logging();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Runtime(args) => runtime::run(&cli.connections, args).await,
        Command::Saga(args) => saga::run(args).await,
        Command::Rebuild(args) => rebuild::run(&cli.connections.kafka, args).await,
        Command::Query(args) => query::run(args).await,
        Command::Faults(args) => faults::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_subcommand_parses_its_flags_without_clashes() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "eventmart-bench",
            "rebuild",
            "--orders",
            "100",
            "--engine",
            "sqlite",
            "--batch",
            "200,1000,5000",
            "--models",
            "order-view,consumer-only",
            "-X",
            "fetch.max.bytes=1048576",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Rebuild(_)));
        assert_eq!(cli.connections.kafka.len(), 1);
        let cli = Cli::try_parse_from([
            "eventmart-bench",
            "query",
            "--duration",
            "5s",
            "--connections",
            "16",
            "--threads",
            "2",
            "--engine",
            "postgres",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Query(_)));
    }
}
