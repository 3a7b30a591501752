//! The API served on a free port over a real database that the projector writes at the same
//! time, event by event as the consumer does: what a client reads while the view changes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{
    CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine,
};
use eventmart_events::payments::{PaymentCompleted, PaymentFailed};
use eventmart_events::{Currency, Decoded, Envelope, Event, Format, Money};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{Reads, ServedQueries, apply_in_order};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::{App, router};
use crate::ReadModel;
use crate::projector::Projector;

/// The query API on a free port over a fresh database (see [`ServedQueries`]).
async fn serve(engine: Engine) -> anyhow::Result<ServedQueries> {
    let wait_max = Duration::from_secs(5);
    ServedQueries::start::<ReadModel>(engine, |live| router(App { live, wait_max })).await
}

/// Applies `events` in order, each in its own transaction.
async fn apply(served: &ServedQueries, events: &[Decoded]) -> anyhow::Result<()> {
    let events: Vec<&Decoded> = events.iter().collect();
    let projector = Projector {
        engine: served.writer.engine,
    };
    apply_in_order(&projector, &served.writer, &events, "orders").await
}
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn decoded(event: Event) -> Decoded {
    Decoded {
        envelope: Envelope::new(&event),
        event,
        format: Format::Json,
    }
}

/// Order `order_id`'s saga in the order it happens: placed, reserved, then paid and
/// confirmed, or (if `declined`) refused and cancelled.
fn saga(order_id: Uuid, declined: bool) -> Vec<Decoded> {
    let (user_id, product_id, payment_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let amount = Money::new(700, Currency::EUR);
    let mut events: Vec<Event> = vec![
        OrderCreated {
            order_id,
            user_id,
            lines: vec![OrderLine {
                product_id,
                quantity: 1,
                unit_price: amount,
            }],
            total: amount,
            payment_token: None,
            created_at: at(0),
        }
        .into(),
        InventoryUpdated {
            change: InventoryChange::Reserved,
            order_id: Some(order_id),
            lines: vec![StockLine {
                product_id,
                quantity: 1,
            }],
            reason: None,
            updated_at: at(1),
        }
        .into(),
    ];
    if declined {
        events.push(
            PaymentFailed {
                payment_id,
                order_id,
                user_id,
                amount,
                reason: "card_declined".into(),
                failed_at: at(2),
            }
            .into(),
        );
        events.push(
            OrderCancelled {
                order_id,
                reason: CancellationReason::PaymentDeclined,
                detail: None,
                cancelled_at: at(3),
            }
            .into(),
        );
    } else {
        events.push(
            PaymentCompleted {
                payment_id,
                order_id,
                user_id,
                amount,
                completed_at: at(2),
            }
            .into(),
        );
        events.push(
            OrderConfirmed {
                order_id,
                payment_id,
                confirmed_at: at(3),
            }
            .into(),
        );
    }
    events.into_iter().map(decoded).collect()
}

/// How `order`, as `GET /orders/{id}` answers it, disagrees with its own timeline, if it
/// does. The projector writes each change of an order in the transaction that adds its
/// event to the timeline, so an answer read from one snapshot shows both or neither: the
/// creation fields exactly when the timeline has CREATED, and a decision exactly when it has
/// that decision.
fn disagreement(order: &Value) -> Option<String> {
    let steps: Vec<&str> = order["timeline"]
        .as_array()
        .map(|entries| entries.iter().filter_map(|e| e["step"].as_str()).collect())
        .unwrap_or_default();
    let decided = ["CONFIRMED", "CANCELLED"]
        .into_iter()
        .find(|decision| steps.contains(decision));
    let placed = !order["user_id"].is_null();
    let agrees = placed == steps.contains(&"CREATED")
        && order["status"].as_str() == Some(decided.unwrap_or("PENDING"));
    (!agrees).then(|| format!("status {} with timeline {steps:?}", order["status"]))
}

/// Orders whose sagas a client reads while they are applied.
const ORDERS: usize = 30;

/// Readers reading at once.
const READERS: usize = 3;

async fn an_order_read_while_its_saga_is_applied_always_agrees_with_its_timeline(
    engine: Engine,
) -> anyhow::Result<()> {
    let served = serve(engine).await?;
    let orders: Arc<Vec<Uuid>> = Arc::new((0..ORDERS).map(|_| Uuid::now_v7()).collect());
    let read = Arc::clone(&orders);
    let Reads { answers, wrong } = served
        .read_while_writing(
            ORDERS,
            READERS,
            move |i| format!("/orders/{}", read[i]),
            disagreement,
            |i| {
                let events = saga(orders[i], i % 2 == 1);
                let served = &served;
                async move { apply(served, &events).await }
            },
        )
        .await?;
    assert!(
        wrong.is_empty(),
        "{} of {answers} answers disagree with their timeline, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    assert!(answers >= ORDERS, "only {answers} answers read");
    // And once written, each order is decided, with its whole saga.
    for (index, order_id) in orders.iter().enumerate() {
        let (status, order) = served.get(&format!("/orders/{order_id}")).await?;
        assert_eq!(status, StatusCode::OK, "{order}");
        let decided = if index % 2 == 1 {
            "CANCELLED"
        } else {
            "CONFIRMED"
        };
        assert_eq!(order["status"], decided, "{order}");
        assert_eq!(order["timeline"].as_array().map(Vec::len), Some(4));
    }
    Ok(())
}

on_both_engines!(an_order_read_while_its_saga_is_applied_always_agrees_with_its_timeline);
