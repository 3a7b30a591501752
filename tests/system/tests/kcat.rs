//! Events typed into kcat are first-class: JSON produced onto a topic with the project's kcat
//! wrapper has the same effect as if its owning service had emitted it, a repeat of the same
//! event has one effect, and an invalid one lands in the dead-letter topic with the reason.

use std::time::Duration;

use eventmart_events::Topic;
use eventmart_runtime::db::Engine;
use eventmart_system::{Settings, StatusCode, System};
use serde_json::json;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_a_restock_and_an_order_typed_into_kcat_drive_the_saga() -> anyhow::Result<()> {
    let system = System::start(Settings::new(Engine::Sqlite)).await?;
    // A product the catalog service created, so that inventory and orders know it.
    let product = system.create_product("KCAT-1", 1500).await?;

    // A user, typed in: users shows it, and orders learns of it.
    let user = Uuid::now_v7();
    let registered = json!({"event_type": "user.registered", "user_id": user,
        "email": "kim@example.com", "name": "Kim", "registered_at": "2026-11-26T10:00:00.000Z"});
    system
        .kcat_produce(Topic::Users, true, &format!("{user}:{registered}\n"))
        .await?;
    let shown = system
        .wait_until(
            "users",
            &format!("/users/{user}"),
            "the typed-in user",
            DEADLINE,
            |_| true,
        )
        .await?;
    assert_eq!(shown["email"], "kim@example.com");

    // A restock, typed in twice with the same event id: stock rises once.
    let restock_id = Uuid::now_v7();
    let restocked = json!({"event_type": "inventory.updated", "event_id": restock_id,
        "change": "RESTOCKED", "lines": [{"product_id": product, "quantity": 7}],
        "updated_at": "2026-11-26T10:00:01.000Z"});
    let line = format!("{product}:{restocked}\n");
    system
        .kcat_produce(Topic::Inventory, true, &format!("{line}{line}"))
        .await?;
    system
        .wait_until(
            "inventory",
            &format!("/stock/{product}"),
            "the typed-in restock",
            DEADLINE,
            |s| s["available"] == 7,
        )
        .await?;

    // An order, typed in: the saga runs, and orders knows the order.
    let order = Uuid::now_v7();
    let created = json!({"event_type": "order.created", "order_id": order, "user_id": user,
        "lines": [{"product_id": product, "quantity": 3,
                   "unit_price": {"cents": 1500, "currency": "EUR"}}],
        "total": {"cents": 4500, "currency": "EUR"},
        "created_at": "2026-11-26T10:00:02.000Z"});
    system
        .kcat_produce(Topic::Orders, true, &format!("{order}:{created}\n"))
        .await?;
    let ended = system.wait_final(order, DEADLINE).await?;
    assert_eq!(ended["status"], "CONFIRMED", "{ended}");
    let stock = system
        .wait_until(
            "inventory",
            &format!("/stock/{product}"),
            "3 sold",
            DEADLINE,
            |s| s["sold"] == 3,
        )
        .await?;
    assert_eq!(
        (stock["received"].as_i64(), stock["available"].as_i64()),
        (Some(7), Some(4)),
        "the repeated restock counted once: {stock}"
    );
    // The duplicate restock is still only one event's worth after everything settled.
    let (status, again) = system
        .get("inventory", &format!("/stock/{product}"))
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["received"], 7);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_event_typed_into_kcat_lands_in_the_dead_letter_topic_and_nothing_stops()
-> anyhow::Result<()> {
    let system = System::start(Settings::new(Engine::Sqlite)).await?;
    let product = system.create_product("KCAT-2", 300).await?;
    // A quantity that is not a number, then a good restock behind it.
    let bad = json!({"event_type": "inventory.updated", "change": "RESTOCKED",
        "lines": [{"product_id": product, "quantity": "lots"}],
        "updated_at": "2026-11-26T10:00:00.000Z"});
    let good = json!({"event_type": "inventory.updated", "change": "RESTOCKED",
        "lines": [{"product_id": product, "quantity": 2}],
        "updated_at": "2026-11-26T10:00:01.000Z"});
    system
        .kcat_produce(
            Topic::Inventory,
            true,
            &format!("{product}:{bad}\n{product}:{good}\n"),
        )
        .await?;
    system
        .wait_until(
            "inventory",
            &format!("/stock/{product}"),
            "the good restock behind the bad one",
            DEADLINE,
            |s| s["available"] == 2,
        )
        .await?;
    let letters = eventmart_runtime::testing::wait_for(
        "the bad event in the dead-letter topic",
        DEADLINE,
        || async {
            let letters = system.dead_letters(Topic::Inventory).await.ok()?;
            (!letters.is_empty()).then_some(letters)
        },
    )
    .await?;
    assert!(
        letters
            .iter()
            .any(|l| l.error_message.contains("lines[0].quantity")),
        "the reason names the field: {:?}",
        letters.iter().map(|l| &l.error_message).collect::<Vec<_>>()
    );
    Ok(())
}
