//! `eventmart`: the operator's tool. Provisions topics, registers the event schemas, decodes
//! records into readable JSON, lists and replays dead letters, shows where every consumer
//! stands, and rebuilds read models and services' own state from the topics.

mod decode;
mod dlq;
mod projection;
mod schemas;
mod service;
mod status;
mod topics;
mod versions;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use eventmart_runtime::process::Connections;

/// Operate an eventmart system: topics, schemas, records.
#[derive(Debug, Parser)]
#[command(name = "eventmart", version, about)]
struct Cli {
    #[command(flatten)]
    conn: Connections,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and list topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Register the event schemas with the schema registry.
    #[command(subcommand)]
    Schemas(SchemasCommand),
    /// Read records from a topic and print each decoded, as JSON (errors included).
    Decode(decode::DecodeArgs),
    /// List a topic's dead letters, show one in full, or replay them onto the topic.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Show every consumer group's committed position and lag (in events and seconds) on the
    /// event topics, and each dead-letter topic's count.
    Status(status::StatusArgs),
    /// Rebuild a read model from the topics while it serves, compare versions by checksum,
    /// promote or drop a version.
    #[command(subcommand)]
    Projection(projection::ProjectionCommand),
    /// Rebuild a service's own state from its topics while it runs, compare it with the live
    /// state by checksum, and swap it in while the service is stopped.
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create every event topic and its dead-letter topic; existing ones are left as they are.
    Create {
        /// Partitions per topic.
        #[arg(long, env = "EVENTMART_PARTITIONS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
        /// Copies of each partition (3 on a production cluster).
        #[arg(long, env = "EVENTMART_REPLICATION_FACTOR", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: i32,
        /// How long to wait for the broker to answer before giving up.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        wait: Duration,
    },
    /// List the topics on the broker with their partition counts.
    List {
        /// Print names only, one a line.
        #[arg(long)]
        names: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Print one line per dead letter: partition:offset, kind, original position, message.
    List(dlq::DlqArgs),
    /// Print one dead letter in full: why and where it failed, its headers, its key, and its
    /// value (decoded to JSON when it decodes).
    Show(dlq::ShowArgs),
    /// Re-produce dead letters onto their original topic with their original key, value and
    /// headers; reads up to the dead-letter topic's end as of the start.
    Replay(dlq::DlqArgs),
}

#[derive(Debug, Subcommand)]
enum SchemasCommand {
    /// Register every event schema under its subject (<topic>-<record name>).
    Register,
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_none() {
        // The tool prints its results; logs are for when something needs a closer look.
        tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_writer(std::io::stderr)
            .init();
    } else {
        eventmart_runtime::process::init_logging();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Topics(TopicsCommand::Create {
            partitions,
            replication_factor,
            wait,
        }) => topics::create(&cli.conn, partitions, replication_factor, wait).await,
        Command::Topics(TopicsCommand::List { names }) => topics::list(&cli.conn, names).await,
        Command::Schemas(SchemasCommand::Register) => schemas::register(&cli.conn).await,
        Command::Decode(args) => decode::run(&cli.conn, args).await,
        Command::Dlq(DlqCommand::List(args)) => dlq::list(&cli.conn, args).await,
        Command::Dlq(DlqCommand::Replay(args)) => dlq::replay(&cli.conn, args).await,
        Command::Dlq(DlqCommand::Show(args)) => dlq::show(&cli.conn, args).await,
        Command::Status(args) => status::run(&cli.conn, args).await,
        Command::Projection(command) => projection::run(&cli.conn, command).await,
        Command::Service(command) => service::run(&cli.conn, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
