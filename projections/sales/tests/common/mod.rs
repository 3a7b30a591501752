//! What the sales binary's integration tests share: how long they wait, and the orders events
//! they type into the topic. Each test binary uses part of it.

#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use eventmart_events::orders::{
    CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine,
};
use eventmart_events::{Currency, Envelope, Event, Money};
use eventmart_runtime::command::PositionToken;
use serde_json::{Value, json};
use uuid::Uuid;

/// How long anything asynchronous may take.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// How long reads with a position wait in the tests that expect them to succeed: long
/// enough for the consumer group to form on a busy machine.
pub(crate) const LONG_WAIT: (&str, &str) = ("SALES_WAIT_MAX", "60s");

/// The position token of `events`, as a command that appended them would answer.
pub(crate) fn position(events: &[&(Event, Envelope)]) -> String {
    let ids: Vec<Uuid> = events.iter().map(|(_, e)| e.event_id).collect();
    PositionToken::encode(&ids)
}

/// May 2024, day `day` at `hour`:00 UTC.
pub(crate) fn may(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, day, hour, 0, 0).unwrap()
}

/// An event with an envelope of its own.
pub(crate) fn enveloped(event: impl Into<Event>) -> (Event, Envelope) {
    let event = event.into();
    let envelope = Envelope::new(&event);
    (event, envelope)
}

/// `order.created` of `lines`: (product, quantity, unit price in cents, currency).
pub(crate) fn created(order_id: Uuid, lines: &[(Uuid, i32, i64, Currency)]) -> (Event, Envelope) {
    let lines: Vec<OrderLine> = lines
        .iter()
        .map(|&(product_id, quantity, cents, currency)| OrderLine {
            product_id,
            quantity,
            unit_price: Money::new(cents, currency),
        })
        .collect();
    let total = lines
        .iter()
        .map(|l| i64::from(l.quantity) * l.unit_price.cents)
        .sum();
    let currency = lines
        .first()
        .map_or(Currency::EUR, |l| l.unit_price.currency);
    enveloped(OrderCreated {
        order_id,
        user_id: Uuid::now_v7(),
        lines,
        total: Money::new(total, currency),
        payment_token: None,
        created_at: may(1, 0),
    })
}

pub(crate) fn confirmed(order_id: Uuid, at: DateTime<Utc>) -> (Event, Envelope) {
    enveloped(OrderConfirmed {
        order_id,
        payment_id: Uuid::now_v7(),
        confirmed_at: at,
    })
}

pub(crate) fn cancelled(order_id: Uuid, at: DateTime<Utc>) -> (Event, Envelope) {
    enveloped(OrderCancelled {
        order_id,
        reason: CancellationReason::OutOfStock,
        detail: None,
        cancelled_at: at,
    })
}

/// `[{currency, cents}]` as answered.
pub(crate) fn revenue(of: &[(&str, i64)]) -> Value {
    of.iter()
        .map(|(currency, cents)| json!({"currency": currency, "cents": cents}))
        .collect()
}

/// The `product_id`s of a ranking's items.
pub(crate) fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["product_id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
