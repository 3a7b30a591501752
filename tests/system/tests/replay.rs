//! Rebuilding a read model under load: while customers keep placing orders and a client
//! keeps reading them back from the order view (each with its command's position), the view
//! is rebuilt from offset 0 with `eventmart projection rebuild` and swapped in. The client
//! never gets an error, never misses an order it placed, and never sees an order go back
//! to an earlier state; a second, fresh rebuild has the same checksums as the swapped-in
//! one, as has a rebuild of every other read model beside its live version; and the read
//! models agree with the services.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eventmart_events::Topic;
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_system::{READ_MODELS, Settings, StatusCode, System, read_models_agree};
use tokio::sync::Mutex;
use uuid::Uuid;

const SAGA: Duration = Duration::from_secs(60);

/// What the reading client has seen of one order: how many timeline steps, and whether it
/// was decided.
type Seen = HashMap<Uuid, (usize, bool)>;

/// Reads every placed order back with its position, over and over, until `stop`; returns
/// the reads made and every error or regression seen.
async fn keep_reading(
    system: Arc<System>,
    placed: Arc<Mutex<Vec<(Uuid, String)>>>,
    stop: Arc<AtomicBool>,
) -> (u64, Vec<String>) {
    let mut seen = Seen::new();
    let mut reads = 0;
    let mut problems = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let orders = placed.lock().await.clone();
        for (order, position) in orders.iter().rev().take(40) {
            let path = format!("/orders/{order}?position={position}");
            reads += 1;
            match system.get("order-view", &path).await {
                Ok((StatusCode::OK, view)) => {
                    let steps = view["timeline"].as_array().map_or(0, Vec::len);
                    let decided = view["status"] != "PENDING";
                    let (was_steps, was_decided) = seen.get(order).copied().unwrap_or((0, false));
                    if steps < was_steps || (was_decided && !decided) {
                        problems.push(format!(
                            "order {order} went back: {was_steps} steps (decided {was_decided}) \
                             then {steps} (decided {decided})"
                        ));
                    }
                    seen.insert(*order, (steps.max(was_steps), decided || was_decided));
                }
                Ok((status, body)) => problems.push(format!("{path}: {status} {body}")),
                Err(error) => problems.push(format!("{path}: {error:#}")),
            }
        }
    }
    (reads, problems)
}

async fn a_projection_rebuilt_under_load_is_swapped_in_without_a_failed_or_older_read(
    engine: Engine,
) -> anyhow::Result<()> {
    let mut settings = Settings::new(engine);
    settings.read_models = &READ_MODELS;
    let system = Arc::new(System::start(settings).await?);
    let user = system.register_user("load@example.com").await?;
    let book = system.create_product("BOOK-LOAD", 1250).await?;
    system.restock(book, 10_000).await?;
    let placed = Arc::new(Mutex::new(Vec::new()));
    for _ in 0..15 {
        let order = system.place_order_at(user, &[(book, 1)], None).await?;
        placed.lock().await.push(order);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(keep_reading(system.clone(), placed.clone(), stop.clone()));
    let shop = {
        let (system, placed, stop) = (system.clone(), placed.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let order = system.place_order_at(user, &[(book, 1)], None).await?;
                placed.lock().await.push(order);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            anyhow::Ok(())
        })
    };

    // A record nobody can read, typed into the orders topic: the order view dead-letters it.
    system
        .kcat_produce(Topic::Orders, false, "{\"this is\": \"not an event\"\n")
        .await?;
    let order_view_letters = || async {
        let letters = system.dead_letters(Topic::Orders).await?;
        anyhow::Ok(
            letters
                .iter()
                .filter(|l| {
                    l.consumer_group
                        .as_deref()
                        .is_some_and(|g| g.starts_with("order-view"))
                })
                .count(),
        )
    };
    eventmart_runtime::testing::wait_for("the order view's dead letter", SAGA, || async {
        (order_view_letters().await.ok()? == 1).then_some(())
    })
    .await?;

    let url = system.database_url("order-view").await?;
    let rebuilt = system
        .eventmart(&[
            "projection",
            "rebuild",
            "order-view",
            "--database-url",
            &url,
            "--plain",
        ])
        .await?;
    assert!(rebuilt.contains("now serves version 2"), "{rebuilt}");
    let at_swap = placed.lock().await.len();
    // Orders keep coming and being read back after the swap.
    wait_until_placed(&placed, at_swap + 10, Duration::from_secs(60)).await?;
    stop.store(true, Ordering::Relaxed);
    shop.await??;
    let (reads, problems) = reader.await?;
    assert!(
        problems.is_empty(),
        "{reads} reads:\n{}\nthe order view's log:\n{}",
        problems.join("\n"),
        system.log("order-view").await
    );
    assert!(reads > 50, "only {reads} reads");

    let orders: Vec<Uuid> = placed.lock().await.iter().map(|(o, _)| *o).collect();
    for order in &orders {
        system.wait_final(*order, SAGA).await?;
    }
    // A second, fresh rebuild, left beside the live one, equals it row for row.
    let second = system
        .eventmart(&[
            "projection",
            "rebuild",
            "order-view",
            "--database-url",
            &url,
            "--plain",
            "--no-promote",
        ])
        .await?;
    assert!(second.contains("version 3: built"), "{second}");
    let verified = system
        .eventmart(&[
            "projection",
            "verify",
            "order-view",
            "--database-url",
            &url,
            "--left",
            "2",
            "--right",
            "3",
        ])
        .await?;
    assert!(verified.contains("identical"), "{verified}");
    // Neither rebuild wrote the poison to the dead-letter topic again.
    assert_eq!(order_view_letters().await?, 1);
    // Every other read model, rebuilt from offset 0 beside its live version, equals it.
    for model in ["product-availability", "sales", "saga-tracker"] {
        let url = system.database_url(model).await?;
        let base = ["projection", "rebuild", model, "--database-url", &url];
        let built = system
            .eventmart(&[&base[..], &["--plain", "--no-promote"]].concat())
            .await?;
        assert!(built.contains("version 2: built"), "{model}: {built}");
        let verify = ["projection", "verify", model, "--database-url", &url];
        let verified = system.eventmart(&verify).await?;
        assert!(verified.contains("identical"), "{model}: {verified}");
    }
    let (compared, _) = read_models_agree(&system, &READ_MODELS, SAGA).await?;
    assert_eq!(compared, orders.len());
    println!(
        "replay: {reads} reads without an error or a step back across the swap; {} orders \
         ({at_swap} when version 2 was swapped in); the read models agree",
        orders.len()
    );
    Ok(())
}

on_both_engines!(a_projection_rebuilt_under_load_is_swapped_in_without_a_failed_or_older_read);

/// Waits until the shop has placed `count` orders.
async fn wait_until_placed(
    placed: &Mutex<Vec<(Uuid, String)>>,
    count: usize,
    deadline: Duration,
) -> anyhow::Result<()> {
    eventmart_runtime::testing::wait_for("more orders to be placed", deadline, || async {
        (placed.lock().await.len() >= count).then_some(())
    })
    .await
}
