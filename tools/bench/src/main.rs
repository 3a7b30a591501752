//! `eventmart-bench`: measures the system against the broker it runs on. Every figure is
//! printed beside a raw baseline measured in the same run on the same broker, because the
//! absolute numbers move with the machine and the broker; the ratio is what to compare.
//!
//! It needs a broker and a schema registry (`scripts/up` starts both) and, for the
//! PostgreSQL figures, a PostgreSQL server; each run uses fresh topics and databases.

mod runtime;
mod saga;

use clap::{Parser, Subcommand};
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
    }
}
