//! Chaos: a short fault schedule (see `eventmart_system::faults`): 300 orders across several
//! users and products, with random declines and cancellations, while every service, every
//! read model and the broker are killed with SIGKILL and restarted at random moments, and
//! stray events and duplicates are typed in with kcat. Afterwards every order has ended, the
//! saga's invariants hold exactly, every read model agrees with the services, the strays are
//! parked or dead-lettered (none applied), and every service's state rebuilt from the topics
//! equals its live state. The run prints its counts.
//!
//! `EVENTMART_CHAOS_ORDERS` and `EVENTMART_CHAOS_SEED` change the size and the dice;
//! `EVENTMART_CHAOS_ENGINE=postgres` runs the services on PostgreSQL.

use eventmart_runtime::db::Engine;
use eventmart_system::faults::{Plan, run};
use eventmart_system::{READ_MODELS, SERVICES};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_ends_and_the_invariants_hold_while_services_are_killed_at_random()
-> anyhow::Result<()> {
    let orders: usize = env_or("EVENTMART_CHAOS_ORDERS", 300);
    let seed: u64 = env_or(
        "EVENTMART_CHAOS_SEED",
        u64::from(std::process::id()) * 0x9E37_79B9 + 1,
    );
    println!("chaos: {orders} orders, seed {seed}");
    let engine = match std::env::var("EVENTMART_CHAOS_ENGINE").as_deref() {
        Ok("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };
    let (system, report) = run(&Plan::short(engine, orders, seed)).await?;
    println!("{report}");
    assert_eq!(
        report.ledger.by_status.values().sum::<u64>(),
        u64::try_from(report.placed)?
    );
    assert_eq!(report.compared.0, report.placed);
    // Every stray waits parked in orders, or went to the dead-letter topic once its budget
    // ran out: none was applied (the ledger counts no order they name).
    assert!(report.strays > 0);
    let dead_strays = report.dead_letters.get("payments").copied().unwrap_or(0);
    assert!(
        report.parked + i64::try_from(dead_strays)? >= i64::try_from(report.strays)?,
        "{report}"
    );

    // Each service's state, rebuilt from the topics after all this, is the live one.
    for name in SERVICES {
        let url = system.database_url(name).await?;
        let database = ["--database-url", url.as_str()];
        let built = system
            .eventmart(&[&["service", "rebuild", name, "--plain"][..], &database].concat())
            .await?;
        let verified = system
            .eventmart(&[&["service", "verify", name][..], &database].concat())
            .await?;
        assert!(verified.contains("identical"), "{name}: {built}{verified}");
    }
    println!("chaos: every service's state rebuilt from the topics equals the live one");
    assert_eq!(
        report.kills.len(),
        SERVICES.len() + READ_MODELS.len() + 1,
        "every service, read model and the broker were killed: {:?}",
        report.kills
    );
    assert!(
        report.kills.values().sum::<u32>() >= 10,
        "{:?}",
        report.kills
    );
    Ok(())
}
