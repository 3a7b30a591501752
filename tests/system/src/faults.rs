//! A fault schedule: a shop's traffic of orders (several customers and products, declined
//! cards, customers who cancel) while the system's parts fail at random moments: every
//! service and read model is killed with SIGKILL and restarted, the broker is killed and
//! restarted on its data, PostgreSQL is restarted, and duplicates and stray events are typed
//! in with kcat. Afterwards every order has ended, the saga's invariants hold (see
//! [`Ledger`]) and the read models agree with the services; [`Report`] prints the counts.
//!
//! The chaos test runs a short schedule; `eventmart-bench faults` a long one.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use eventmart_events::Topic;
use eventmart_runtime::db::Engine;
use serde_json::json;
use uuid::Uuid;

use crate::flows::{Flows, Percentiles};
use crate::{Ledger, READ_MODELS, SERVICES, Settings, System, read_models_agree};

/// What a schedule does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The services' and read models' database engine.
    pub engine: Engine,
    /// Orders to place, at least.
    pub orders: usize,
    /// How long to keep placing orders, at least (a slower pace spreads the orders over it).
    pub duration: Duration,
    /// The dice: a seed replays a schedule.
    pub seed: u64,
    /// Kill and restart the broker too.
    pub broker: bool,
    /// Restart PostgreSQL too (`pg_ctlcluster`, as root; it serves every database on the
    /// machine, so never while other tests run).
    pub postgres: bool,
    /// Type duplicates and stray events in with kcat.
    pub strays: bool,
    /// How long a stray waits parked before it is dead-lettered.
    pub park_budget: Duration,
    /// How long processed ids and idempotency keys are kept, if not the defaults (a soak
    /// short enough to see them pruned needs a short one).
    pub retention: Option<Duration>,
}

impl Plan {
    /// A short schedule on `engine`: `orders` orders, the broker killed, strays typed in.
    pub fn short(engine: Engine, orders: usize, seed: u64) -> Self {
        Self {
            engine,
            orders,
            duration: Duration::ZERO,
            seed,
            broker: true,
            postgres: false,
            strays: true,
            park_budget: Duration::from_secs(15),
            retention: None,
        }
    }
}

/// What a schedule did and what it left.
#[derive(Debug)]
pub struct Report {
    /// Orders placed, and how long placing them took.
    pub placed: usize,
    pub placed_in: Duration,
    /// Orders asked with a declining card, and cancelled by their customer.
    pub declined_asked: usize,
    pub cancels_asked: usize,
    /// Kills by victim (`broker`, `postgres`, or a component's name).
    pub kills: BTreeMap<String, u32>,
    /// Stray events and duplicates typed in.
    pub strays: usize,
    pub duplicates: usize,
    /// The services' ledger once every order ended.
    pub ledger: Ledger,
    /// Orders and products on which the read models agreed with the services.
    pub compared: (usize, usize),
    /// Events still parked in the services' databases, and dead letters by topic.
    pub parked: i64,
    pub dead_letters: BTreeMap<String, usize>,
    /// Creation to end of each order, in milliseconds.
    pub latency: Percentiles,
    /// Rows of processed ids and idempotency keys over every database, sampled while the
    /// orders were placed: (time since the first order, processed ids, keys).
    pub stored_ids: Vec<(Duration, i64, i64)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "faults: {} orders placed in {:.1?} ({} with a declining card, {} cancelled by \
             the customer)",
            self.placed, self.placed_in, self.declined_asked, self.cancels_asked
        )?;
        writeln!(f, "faults: kills {:?}", self.kills)?;
        writeln!(
            f,
            "faults: typed in {} stray events and {} duplicates; {} events still parked; \
             dead letters {:?}",
            self.strays, self.duplicates, self.parked, self.dead_letters
        )?;
        writeln!(f, "faults: {}", self.ledger)?;
        writeln!(
            f,
            "faults: the read models agree with the services on {} orders and {} products",
            self.compared.0, self.compared.1
        )?;
        if !self.stored_ids.is_empty() {
            let samples: Vec<String> = self
                .stored_ids
                .iter()
                .map(|(at, processed, keys)| format!("{}s {processed}/{keys}", at.as_secs()))
                .collect();
            writeln!(
                f,
                "faults: stored rows (processed ids / idempotency keys) over time: {}",
                samples.join(", ")
            )?;
        }
        write!(
            f,
            "faults: saga created -> ended p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.latency.p(50),
            self.latency.p(95),
            self.latency.p(99),
            self.latency.p(100)
        )
    }
}

/// A small deterministic random source (xorshift64*), so that a seed replays a schedule.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    /// Spreads `seed` over all 64 bits (splitmix64), so that close seeds roll apart.
    pub fn new(seed: u64) -> Self {
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

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration from `from` to `to` milliseconds.
    pub fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }

    fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }
}

/// Asks to cancel `order`, retrying while orders is down; a 409 (already ended) is an answer.
async fn cancel(system: &System, order: Uuid) -> anyhow::Result<()> {
    let path = format!("/orders/{order}/cancel");
    eventmart_runtime::testing::wait_for("a cancellation answer", Duration::from_secs(120), || {
        let path = path.clone();
        async move {
            match system.post("orders", &path, &serde_json::Value::Null).await {
                Ok((status, _)) if status.is_success() || status.as_u16() == 409 => Some(()),
                _ => None,
            }
        }
    })
    .await
}

/// Restarts the machine's PostgreSQL cluster and waits until it answers.
async fn restart_postgres() -> anyhow::Result<()> {
    let clusters = tokio::process::Command::new("pg_lsclusters")
        .arg("-h")
        .output()
        .await
        .context("pg_lsclusters")?;
    let text = String::from_utf8_lossy(&clusters.stdout);
    let mut first = text.lines().next().unwrap_or_default().split_whitespace();
    let (Some(version), Some(cluster)) = (first.next(), first.next()) else {
        bail!("no PostgreSQL cluster listed by pg_lsclusters");
    };
    let status = tokio::process::Command::new("pg_ctlcluster")
        .args([version, cluster, "restart", "--mode", "immediate"])
        .status()
        .await
        .context("pg_ctlcluster")?;
    if !status.success() {
        bail!("pg_ctlcluster {version} {cluster} restart exited with {status}");
    }
    eventmart_runtime::testing::wait_for(
        "PostgreSQL to answer",
        Duration::from_secs(60),
        || async {
            let status = tokio::process::Command::new("pg_isready")
                .args(["-q", "-h", "127.0.0.1"])
                .status()
                .await
                .ok()?;
            status.success().then_some(())
        },
    )
    .await
}

/// Kills one victim after another at random moments until `done`, then three more times.
async fn kill_at_random(
    system: Arc<System>,
    plan: Plan,
    done: Arc<AtomicBool>,
) -> anyhow::Result<BTreeMap<String, u32>> {
    let mut dice = Dice::new(plan.seed ^ 0xDEAD_BEEF);
    let mut kills = BTreeMap::<String, u32>::new();
    let mut after_done = 0;
    let mut victims: Vec<&str> = Vec::new();
    while after_done < 3 {
        if done.load(Ordering::Relaxed) {
            after_done += 1;
        }
        tokio::time::sleep(dice.millis(300, 1500)).await;
        // Each round kills every victim once, in a random order.
        if victims.is_empty() {
            victims = SERVICES.iter().chain(&READ_MODELS).copied().collect();
            if plan.broker {
                victims.push("broker");
            }
            if plan.postgres {
                victims.push("postgres");
            }
            for i in (1..victims.len()).rev() {
                let j = dice.index(i + 1);
                victims.swap(i, j);
            }
        }
        let name = victims.pop().unwrap_or("orders");
        match name {
            "broker" => system.broker.restart().await?,
            "postgres" => restart_postgres().await?,
            _ => {
                system.kill(name).await;
                tokio::time::sleep(dice.millis(50, 800)).await;
                system.restart(name).await?;
            }
        }
        *kills.entry(name.to_owned()).or_default() += 1;
    }
    Ok(kills)
}

/// Types in a stray `payment.completed` for an order nobody placed, and a restock of
/// `product` twice with one event id (the second is a duplicate).
async fn type_in(system: &System, product: Uuid) -> anyhow::Result<()> {
    let order = Uuid::now_v7();
    let stray = json!({"event_type": "payment.completed", "payment_id": Uuid::now_v7(),
        "order_id": order, "user_id": Uuid::now_v7(),
        "amount": {"cents": 999, "currency": "EUR"}, "completed_at": "2026-12-01T10:00:00Z"});
    system
        .kcat_produce(Topic::Payments, true, &format!("{order}:{stray}\n"))
        .await?;
    let restock = json!({"event_type": "inventory.updated", "event_id": Uuid::now_v7(),
        "change": "RESTOCKED", "lines": [{"product_id": product, "quantity": 5}],
        "updated_at": "2026-12-01T10:00:00Z"});
    let line = format!("{product}:{restock}\n");
    system
        .kcat_produce(Topic::Inventory, true, &format!("{line}{line}"))
        .await
}

/// Runs `plan`; fails if an order does not end, an invariant breaks, or the read models do
/// not come to agree with the services.
pub async fn run(plan: &Plan) -> anyhow::Result<(Arc<System>, Report)> {
    let mut dice = Dice::new(plan.seed);
    // A provider slow enough that some customers cancel while their charge is in flight.
    let mut settings = Settings::new(plan.engine);
    settings.provider_latency = Duration::from_millis(200);
    settings.read_models = &READ_MODELS;
    settings.park_budget = plan.park_budget;
    settings.retention = plan.retention;
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
        system
            .restock(product, 120 + 20 * plan.orders as i64 / 60)
            .await?;
        products.push(product);
    }

    let done = Arc::new(AtomicBool::new(false));
    let chaos = tokio::spawn(kill_at_random(system.clone(), plan.clone(), done.clone()));

    let started = Instant::now();
    let sampling = tokio::spawn(sample_stored_ids(
        system.clone(),
        (plan.duration / 20).max(Duration::from_secs(10)),
        done.clone(),
    ));
    let mut placed: Vec<Uuid> = Vec::with_capacity(plan.orders);
    let (mut declined_asked, mut cancels_asked, mut strays) = (0, 0, 0);
    // Two customers at a time, like a shop's traffic, spread over the schedule.
    let rounds = plan.orders.div_ceil(2).max(1);
    let pace =
        (plan.duration / u32::try_from(rounds).unwrap_or(u32::MAX)).max(Duration::from_millis(150));
    let mut tick = tokio::time::interval(pace);
    for round in 0..rounds {
        tick.tick().await;
        if plan.strays && round % 25 == 12 {
            type_in(&system, products[dice.index(products.len())]).await?;
            strays += 1;
        }
        let mut batch = Vec::new();
        for _ in 0..2 {
            let user = users[dice.index(users.len())];
            let count = 1 + dice.below(3);
            let first = dice.below(products.len() as u64);
            let lines: Vec<(Uuid, i64)> = (0..count)
                .map(|i| {
                    let index = usize::try_from((first + i) % products.len() as u64).unwrap_or(0);
                    (
                        products[index],
                        i64::try_from(1 + dice.below(3)).unwrap_or(1),
                    )
                })
                .collect();
            let token = (dice.below(5) == 0).then_some("tok_decline");
            declined_asked += usize::from(token.is_some());
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
    done.store(true, Ordering::Relaxed);
    let placed_in = started.elapsed();
    let kills = chaos.await??;
    let stored_ids = sampling.await?;

    let flows = Flows::read(&system, &placed, Duration::from_secs(180)).await?;
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
            bail!("invariants broken after the faults:\n{}", ledger.violations);
        }
    };
    let compared = read_models_agree(&system, &READ_MODELS, Duration::from_secs(120)).await?;
    let parked = system.parked().await?;
    let mut dead_letters = BTreeMap::new();
    for topic in Topic::ALL {
        let letters = system.dead_letters(topic).await?;
        if !letters.is_empty() {
            dead_letters.insert(topic.base_name().to_owned(), letters.len());
        }
    }
    let report = Report {
        placed: placed.len(),
        placed_in,
        declined_asked,
        cancels_asked,
        kills,
        strays,
        duplicates: strays,
        ledger,
        compared,
        parked,
        dead_letters,
        latency: Percentiles::of(flows.ended(&placed)),
        stored_ids,
    };
    Ok((system, report))
}

/// Counts the stored ids every `every` until `done` (a sample the faults make fail is left
/// out).
async fn sample_stored_ids(
    system: Arc<System>,
    every: Duration,
    done: Arc<AtomicBool>,
) -> Vec<(Duration, i64, i64)> {
    let started = Instant::now();
    let mut samples = Vec::new();
    while !done.load(Ordering::Relaxed) {
        tokio::time::sleep(every).await;
        if let Ok((processed, keys)) = system.stored_ids().await {
            samples.push((started.elapsed(), processed, keys));
        }
    }
    samples
}
