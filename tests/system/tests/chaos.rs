//! Chaos: a randomized run of 300 orders across several users and products, with random
//! declines, while every service and every read model is killed with SIGKILL and restarted
//! at random moments. Afterwards every order has ended, the saga's invariants hold exactly
//! (see `eventmart_system::Ledger`), every read model agrees with the services (see
//! `eventmart_system::read_models_agree`), and every service's state rebuilt from the topics
//! equals its live state. The run prints its counts.
//!
//! `EVENTMART_CHAOS_ORDERS` and `EVENTMART_CHAOS_SEED` change the size and the dice;
//! `EVENTMART_CHAOS_ENGINE=postgres` runs the services on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eventmart_runtime::db::Engine;
use eventmart_system::{Ledger, READ_MODELS, SERVICES, Settings, System, read_models_agree};
use uuid::Uuid;

/// A small deterministic random source (xorshift64*), so that a seed replays a run's dice.
#[derive(Debug, Clone)]
struct Dice(u64);

impl Dice {
    /// Spreads `seed` over all 64 bits (splitmix64), so that close seeds roll apart.
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Asks to cancel `order`, retrying while orders is down; a 409 (already ended) is an answer.
async fn cancel(system: &System, order: Uuid) -> anyhow::Result<()> {
    let path = format!("/orders/{order}/cancel");
    eventmart_runtime::testing::wait_for(
        "a cancellation answer",
        Duration::from_secs(120),
        || async {
            match system.post("orders", &path, &serde_json::Value::Null).await {
                Ok((status, _)) if status.is_success() || status.as_u16() == 409 => Some(()),
                _ => None,
            }
        },
    )
    .await
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
    let mut dice = Dice::new(seed);
    let engine = match std::env::var("EVENTMART_CHAOS_ENGINE").as_deref() {
        Ok("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };
    // A provider slow enough that some customers cancel while their charge is in flight.
    let mut settings = Settings::new(engine);
    settings.provider_latency = Duration::from_millis(200);
    settings.read_models = &READ_MODELS;
    let system = Arc::new(System::start(settings).await?);

    let mut users = Vec::new();
    for n in 0..4 {
        users.push(
            system
                .register_user(&format!("chaos{n}@example.com"))
                .await?,
        );
    }
    let mut products = Vec::new();
    for n in 0..6 {
        let product = system
            .create_product(&format!("CHAOS-{n}"), 100 + 37 * n)
            .await?;
        system.restock(product, 120).await?;
        products.push(product);
    }

    // Kill and restart services at random until the orders are in and have had time to run.
    let placing_done = Arc::new(AtomicBool::new(false));
    let chaos = {
        let system = system.clone();
        let placing_done = placing_done.clone();
        let mut dice = Dice::new(seed ^ 0xDEAD_BEEF);
        tokio::spawn(async move {
            let mut kills = std::collections::BTreeMap::<&str, u32>::new();
            let mut after_done = 0;
            let mut victims: Vec<&str> = Vec::new();
            while after_done < 3 {
                if placing_done.load(Ordering::Relaxed) {
                    after_done += 1;
                }
                tokio::time::sleep(dice.millis(300, 1500)).await;
                // Each round kills every service and read model once, in a random order.
                if victims.is_empty() {
                    victims = SERVICES.iter().chain(&READ_MODELS).copied().collect();
                    for i in (1..victims.len()).rev() {
                        let j = usize::try_from(dice.below(i as u64 + 1)).unwrap_or(0);
                        victims.swap(i, j);
                    }
                }
                let name = victims.pop().unwrap_or("orders");
                system.kill(name).await;
                *kills.entry(name).or_default() += 1;
                tokio::time::sleep(dice.millis(50, 800)).await;
                system.restart(name).await?;
            }
            anyhow::Ok(kills)
        })
    };

    let started = Instant::now();
    let mut placed: Vec<Uuid> = Vec::with_capacity(orders);
    let mut declined_asked = 0;
    let mut cancels_asked = 0;
    // A few customers at a time, like a shop's traffic, spread over the kills.
    let mut pace = tokio::time::interval(Duration::from_millis(150));
    for chunk in (0..orders).collect::<Vec<_>>().chunks(2) {
        pace.tick().await;
        let mut batch = Vec::new();
        for _ in chunk {
            let user = users[usize::try_from(dice.below(users.len() as u64)).unwrap_or(0)];
            let lines: Vec<(Uuid, i64)> = {
                let count = 1 + dice.below(3);
                let first = dice.below(products.len() as u64);
                (0..count)
                    .map(|i| {
                        let index =
                            usize::try_from((first + i) % products.len() as u64).unwrap_or(0);
                        (
                            products[index],
                            i64::try_from(1 + dice.below(3)).unwrap_or(1),
                        )
                    })
                    .collect()
            };
            let token = (dice.below(5) == 0).then_some("tok_decline");
            declined_asked += usize::from(token.is_some());
            // Some customers change their mind a moment later.
            let cancel_after = (dice.below(8) == 0).then(|| dice.millis(0, 600));
            cancels_asked += usize::from(cancel_after.is_some());
            let system = system.clone();
            batch.push(async move {
                let order = system.place_order(user, &lines, token).await?;
                if let Some(after) = cancel_after {
                    tokio::time::sleep(after).await;
                    cancel(&system, order).await?;
                }
                anyhow::Ok(order)
            });
        }
        for order in futures::future::join_all(batch).await {
            placed.push(order?);
        }
    }
    placing_done.store(true, Ordering::Relaxed);
    let placed_in = started.elapsed();
    let kills = chaos.await??;

    for order in &placed {
        system.wait_final(*order, Duration::from_secs(180)).await?;
    }
    for product in &products {
        system
            .wait_until(
                "inventory",
                &format!("/stock/{product}"),
                "every reservation released or sold",
                Duration::from_secs(120),
                |s| s["reserved"] == 0,
            )
            .await?;
    }
    // Let the last compensations (a refund behind a late charge) land, then read.
    let ledger = eventmart_runtime::testing::wait_for(
        "the ledger to balance",
        Duration::from_secs(60),
        || async {
            let ledger = Ledger::read(&system).await.ok()?;
            ledger.violations.0.is_empty().then_some(ledger)
        },
    )
    .await;
    let ledger = match ledger {
        Ok(ledger) => ledger,
        Err(_) => {
            let ledger = Ledger::read(&system).await?;
            panic!("invariants broken after chaos:\n{}", ledger.violations);
        }
    };
    println!(
        "chaos: {} orders placed in {placed_in:.1?} ({declined_asked} with a declining card, \
         {cancels_asked} cancelled by the customer), \
         kills {kills:?}; {ledger}",
        placed.len()
    );
    assert_eq!(
        ledger.by_status.values().sum::<u64>(),
        u64::try_from(placed.len())?
    );
    let (orders_compared, products_compared) =
        read_models_agree(&system, &READ_MODELS, Duration::from_secs(120)).await?;
    println!(
        "chaos: the read models agree with the services on {orders_compared} orders and \
         {products_compared} products"
    );
    assert_eq!(orders_compared, placed.len());
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
        kills.len(),
        SERVICES.len() + READ_MODELS.len(),
        "every service and read model was killed: {kills:?}"
    );
    assert!(kills.values().sum::<u32>() >= 10, "{kills:?}");
    Ok(())
}
