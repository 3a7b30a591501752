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

/// The events of `orders` complete sagas, each as its services would have written it (with
/// envelopes chaining causation): order.created, inventory.updated RESERVED, then for every
/// fifth order payment.failed, order.cancelled and inventory.updated RELEASED, for the others
/// payment.completed, order.confirmed and inventory.updated SOLD. Five events per order, over
/// `users` customers and `products` products, one order a second from `start`. For
/// replay tests and benchmarks: the same arguments give the same events, ids included.
pub fn sagas(
    orders: u32,
    users: u32,
    products: u32,
    start: DateTime<Utc>,
) -> Vec<(Event, crate::Envelope)> {
    let mut out = Vec::with_capacity(orders as usize * 5);
    let users = users.max(1);
    let products = products.max(1);
    for n in 0..orders {
        let order_id = deterministic(1, n);
        let user_id = deterministic(2, n % users);
        let product_id = deterministic(3, n % products);
        let at = start + chrono::TimeDelta::seconds(i64::from(n));
        let quantity = 1 + (n % 3) as i32;
        let total = eur(1_000 * i64::from(quantity));
        let line = StockLine {
            product_id,
            quantity,
        };
        let mut chain = Chain::new(&mut out, n);
        chain.push(OrderCreated {
            order_id,
            user_id,
            lines: vec![OrderLine {
                product_id,
                quantity,
                unit_price: eur(1_000),
            }],
            total,
            payment_token: Some("tok_visa".into()),
            created_at: at,
        });
        chain.push(InventoryUpdated {
            change: InventoryChange::Reserved,
            order_id: Some(order_id),
            lines: vec![line.clone()],
            reason: None,
            updated_at: at,
        });
        let payment_id = deterministic(4, n);
        if n % 5 == 4 {
            chain.push(PaymentFailed {
                payment_id,
                order_id,
                user_id,
                amount: total,
                reason: "card_declined".into(),
                failed_at: at,
            });
            chain.push(OrderCancelled {
                order_id,
                reason: CancellationReason::PaymentDeclined,
                detail: None,
                cancelled_at: at,
            });
            chain.push(InventoryUpdated {
                change: InventoryChange::Released,
                order_id: Some(order_id),
                lines: vec![line],
                reason: None,
                updated_at: at,
            });
        } else {
            chain.push(PaymentCompleted {
                payment_id,
                order_id,
                user_id,
                amount: total,
                completed_at: at,
            });
            chain.push(OrderConfirmed {
                order_id,
                payment_id,
                confirmed_at: at,
            });
            chain.push(InventoryUpdated {
                change: InventoryChange::Sold,
                order_id: Some(order_id),
                lines: vec![line],
                reason: None,
                updated_at: at,
            });
        }
    }
    out
}

/// A UUIDv7-shaped id that depends only on `kind` and `n`.
fn deterministic(kind: u128, n: u32) -> Uuid {
    Uuid::from_u128(0x0190_c2a8_7a8e_7cc4_8000_0000_0000_0000 | (kind << 40) | u128::from(n))
}

/// One saga's events, each caused by the one before, with ids that depend only on the
/// saga's number and the step.
struct Chain<'a> {
    out: &'a mut Vec<(Event, crate::Envelope)>,
    saga: u32,
    step: u128,
}

impl<'a> Chain<'a> {
    fn new(out: &'a mut Vec<(Event, crate::Envelope)>, saga: u32) -> Self {
        Self { out, saga, step: 0 }
    }

    fn push(&mut self, event: impl Into<Event>) {
        let event = event.into();
        let mut envelope = crate::Envelope::new(&event);
        if let Some((_, cause)) = self.out.last().filter(|_| self.step > 0) {
            envelope = envelope.caused_by(cause);
        }
        self.step += 1;
        envelope.event_id = deterministic(10 + self.step, self.saga);
        if self.step == 1 {
            envelope.correlation_id = envelope.event_id;
        }
        self.out.push((event, envelope));
    }
}
