//! Sample events for tests (here and, with the `samples` feature, in other crates): one of
//! every type with every optional field set, and one with every optional field left out.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::catalog::{ProductCreated, ProductPriceChanged};
use crate::event::Event;
use crate::inventory::{InventoryChange, InventoryUpdated, StockLine};
use crate::money::{Currency, Money};
use crate::orders::{CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine};
use crate::payments::{PaymentCompleted, PaymentFailed, PaymentRefunded};
use crate::users::{UserRegistered, UserUpdated};

/// 2024-05-01T12:00:00.123Z.
pub fn at() -> DateTime<Utc> {
    crate::timestamp::from_millis(1_714_564_800_123).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_c2a8_7a8e_7cc4_9f3c_0000_0000_0000 + n)
}

fn eur(cents: i64) -> Money {
    Money::new(cents, Currency::EUR)
}

pub fn order_created() -> Event {
    OrderCreated {
        order_id: id(1),
        user_id: id(2),
        lines: vec![
            OrderLine {
                product_id: id(3),
                quantity: 2,
                unit_price: eur(1999),
            },
            OrderLine {
                product_id: id(4),
                quantity: 1,
                unit_price: eur(500),
            },
        ],
        total: eur(4498),
        payment_token: Some("tok_visa".into()),
        created_at: at(),
    }
    .into()
}

pub fn inventory_updated() -> Event {
    InventoryUpdated {
        change: InventoryChange::Rejected,
        order_id: Some(id(1)),
        lines: vec![StockLine {
            product_id: id(3),
            quantity: 2,
        }],
        reason: Some("out_of_stock".into()),
        updated_at: at(),
    }
    .into()
}

/// One event of every type, every optional field set.
pub fn full() -> Vec<Event> {
    vec![
        UserRegistered {
            user_id: id(2),
            email: "ada@example.com".into(),
            name: "Ada".into(),
            registered_at: at(),
        }
        .into(),
        UserUpdated {
            user_id: id(2),
            email: Some("ada@example.org".into()),
            name: Some("Ada L.".into()),
            updated_at: at(),
        }
        .into(),
        ProductCreated {
            product_id: id(3),
            sku: "MUG-01".into(),
            name: "Mug".into(),
            price: eur(1999),
            created_at: at(),
        }
        .into(),
        ProductPriceChanged {
            product_id: id(3),
            price: eur(1799),
            changed_at: at(),
        }
        .into(),
        inventory_updated(),
        order_created(),
        OrderConfirmed {
            order_id: id(1),
            payment_id: id(5),
            confirmed_at: at(),
        }
        .into(),
        OrderCancelled {
            order_id: id(1),
            reason: CancellationReason::PaymentDeclined,
            detail: Some("card expired".into()),
            cancelled_at: at(),
        }
        .into(),
        PaymentCompleted {
            payment_id: id(5),
            order_id: id(1),
            user_id: id(2),
            amount: eur(4498),
            completed_at: at(),
        }
        .into(),
        PaymentFailed {
            payment_id: id(5),
            order_id: id(1),
            user_id: id(2),
            amount: eur(4498),
            reason: "insufficient_funds".into(),
            failed_at: at(),
        }
        .into(),
        PaymentRefunded {
            payment_id: id(5),
            order_id: id(1),
            amount: eur(4498),
            reason: "order_cancelled".into(),
            refunded_at: at(),
        }
        .into(),
    ]
}

/// One event of every type, every optional field left out (and every array empty).
pub fn sparse() -> Vec<Event> {
    full()
        .into_iter()
        .map(|event| match event {
            Event::UserUpdated(e) => UserUpdated {
                email: None,
                name: None,
                ..e
            }
            .into(),
            Event::InventoryUpdated(e) => InventoryUpdated {
                change: InventoryChange::Adjusted,
                order_id: None,
                lines: vec![],
                reason: None,
                ..e
            }
            .into(),
            Event::OrderCancelled(e) => OrderCancelled { detail: None, ..e }.into(),
            Event::OrderCreated(e) => OrderCreated {
                lines: vec![],
                payment_token: None,
                ..e
            }
            .into(),
            other => other,
        })
        .collect()
}
