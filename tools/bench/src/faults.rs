//! `eventmart-bench faults`: the long fault schedule (see `eventmart_system::faults`): at
//! least `--orders` orders over at least `--minutes`, while every service and read model,
//! the broker and (with `--postgres`) PostgreSQL are killed and restarted at random, and
//! stray events and duplicates are typed in with kcat. It prints the orders, the kills of
//! each kind, the invariants, the parked and dead-lettered counts, the saga latency
//! percentiles and the rows of processed ids and idempotency keys over time (with
//! `--retention 2m`, say, they level off once pruning keeps up); it fails if an order does not end, an invariant breaks or a read model
//! disagrees. Not a timed test: run it by hand (`--postgres` restarts the machine's cluster,
//! so nothing else may be using it).

use std::time::Duration;

use eventmart_runtime::db::Engine;
use eventmart_system::faults::{Plan, run as run_plan};

/// How long and how hard.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Orders to place, at least.
    #[arg(long, default_value_t = 5_000)]
    orders: usize,
    /// Minutes to keep placing them, at least.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// The services' and read models' database engine: sqlite or postgres.
    #[arg(long, default_value = "postgres", value_parser = crate::runtime::parse_engine)]
    engine: Engine,
    /// Restart PostgreSQL too (`pg_ctlcluster`, as root).
    #[arg(long)]
    postgres: bool,
    /// The dice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long a stray event waits parked before it is dead-lettered.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    park_budget: Duration,
    /// How long processed ids and idempotency keys are kept (the services' defaults, 30
    /// days and 24 hours, if not given); a short one shows their tables level off.
    #[arg(long, value_parser = humantime::parse_duration)]
    retention: Option<Duration>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let plan = Plan {
        duration: Duration::from_secs(args.minutes * 60),
        postgres: args.postgres,
        park_budget: args.park_budget,
        retention: args.retention,
        ..Plan::short(args.engine, args.orders, args.seed)
    };
    println!("faults: {plan:?}");
    let (_system, report) = run_plan(&plan).await?;
    println!("{report}");
    println!(
        "faults: 0 violations, every order ended, the read models agree ({} of {} orders)",
        report.compared.0, report.placed
    );
    Ok(())
}
