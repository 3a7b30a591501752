//! The inventory's decider: every rule about stock and reservations is in [`decide`]; what
//! an `inventory.updated` (or a `product.created`) does to the rows is in [`evolve`].
//!
//! [`decide`]: InventoryDecider::decide
//! [`evolve`]: InventoryDecider::evolve

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use eventmart_events::Event;
use eventmart_events::inventory::{
    InventoryChange, InventoryUpdated, REASON_OUT_OF_STOCK, StockLine,
};
use eventmart_runtime::decider::Decider;
use uuid::Uuid;

use super::state::{Inventory, Reservation, ReservationStatus, Stock};
use super::values::{Delta, Quantity, Reason};

/// What the inventory is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Goods of a known product were received.
    Restock {
        /// The product.
        product_id: Uuid,
        /// How many units.
        quantity: Quantity,
        /// When.
        at: DateTime<Utc>,
    },
    /// Correct a known product's stock on hand by a signed delta.
    Adjust {
        /// The product.
        product_id: Uuid,
        /// Units added (positive) or removed (negative).
        delta: Delta,
        /// Why.
        reason: Reason,
        /// When.
        at: DateTime<Utc>,
    },
    /// Hold every line of a new order, or none (on `order.created`).
    Reserve {
        /// The order.
        order_id: Uuid,
        /// Its lines; a product may appear on several.
        lines: Vec<StockLine>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Give back what a cancelled order holds (on `order.cancelled`).
    Release {
        /// The order.
        order_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Turn what a confirmed order holds into sold goods (on `order.confirmed`).
    Sell {
        /// The order.
        order_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Why the inventory refused a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The product has no stock row (the catalog has not announced it): nothing to change.
    #[error("product {0} is not in the inventory")]
    UnknownProduct(Uuid),
    /// The adjustment would take more units than are available.
    #[error(
        "product {product_id} has {available} units available; adjusting by {delta} would \
         leave fewer than none"
    )]
    InsufficientStock {
        /// The product.
        product_id: Uuid,
        /// Units available now.
        available: i64,
        /// The delta refused.
        delta: i32,
    },
    /// The order cannot be reserved as stated: it has no lines or a line without units.
    #[error("order {order_id} {reason}")]
    InvalidOrder {
        /// The order.
        order_id: Uuid,
        /// What is wrong with it.
        reason: String,
    },
    /// An order was confirmed that holds nothing (no reservation, or one rejected, released
    /// or cancelled): a contradiction in the order's flow.
    #[error("order {order_id} was confirmed but holds no reservation ({status})", status = status.map_or("none", ReservationStatus::as_str))]
    NothingReserved {
        /// The order.
        order_id: Uuid,
        /// Its reservation's status, if it has one.
        status: Option<ReservationStatus>,
    },
}

/// The inventory's pure domain logic; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct InventoryDecider;

impl Decider for InventoryDecider {
    type State = Inventory;
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(&self, state: &Inventory, command: &Command) -> Result<Vec<Event>, DomainError> {
        match command {
            Command::Restock {
                product_id,
                quantity,
                at,
            } => {
                if !state.stock.contains_key(product_id) {
                    return Err(DomainError::UnknownProduct(*product_id));
                }
                let line = line(*product_id, quantity.get());
                Ok(vec![updated(
                    InventoryChange::Restocked,
                    None,
                    vec![line],
                    None,
                    *at,
                )])
            }
            Command::Adjust {
                product_id,
                delta,
                reason,
                at,
            } => {
                let stock = state
                    .stock
                    .get(product_id)
                    .ok_or(DomainError::UnknownProduct(*product_id))?;
                if stock.available + i64::from(delta.get()) < 0 {
                    return Err(DomainError::InsufficientStock {
                        product_id: *product_id,
                        available: stock.available,
                        delta: delta.get(),
                    });
                }
                let line = line(*product_id, delta.get());
                let reason = Some(reason.as_str().to_owned());
                Ok(vec![updated(
                    InventoryChange::Adjusted,
                    None,
                    vec![line],
                    reason,
                    *at,
                )])
            }
            Command::Reserve {
                order_id,
                lines,
                at,
            } => reserve(state, *order_id, lines, *at),
            Command::Release { order_id, at } => match state.reservations.get(order_id) {
                Some(held) if held.status == ReservationStatus::Reserved => Ok(vec![updated(
                    InventoryChange::Released,
                    Some(*order_id),
                    held.lines.clone(),
                    None,
                    *at,
                )]),
                _ => Ok(Vec::new()),
            },
            Command::Sell { order_id, at } => match state.reservations.get(order_id) {
                Some(held) if held.status == ReservationStatus::Reserved => Ok(vec![updated(
                    InventoryChange::Sold,
                    Some(*order_id),
                    held.lines.clone(),
                    None,
                    *at,
                )]),
                Some(held) if held.status == ReservationStatus::Sold => Ok(Vec::new()),
                other => Err(DomainError::NothingReserved {
                    order_id: *order_id,
                    status: other.map(|r| r.status),
                }),
            },
        }
    }

    fn evolve(&self, mut state: Inventory, event: &Event) -> Inventory {
        match event {
            Event::ProductCreated(created) => {
                let id = created.product_id;
                state.stock.entry(id).or_insert_with(|| Stock::new(id));
            }
            Event::InventoryUpdated(update) => apply(&mut state, update),
            _ => {}
        }
        state
    }
}

/// Every line of an order held, or a rejection holding nothing. An order that already has a
/// reservation (whatever its status) is not decided again.
fn reserve(
    state: &Inventory,
    order_id: Uuid,
    lines: &[StockLine],
    at: DateTime<Utc>,
) -> Result<Vec<Event>, DomainError> {
    if state.reservations.contains_key(&order_id) {
        return Ok(Vec::new());
    }
    let invalid = |reason: String| DomainError::InvalidOrder { order_id, reason };
    if lines.is_empty() {
        return Err(invalid("has no lines".to_owned()));
    }
    if let Some(bad) = lines.iter().find(|l| l.quantity <= 0) {
        return Err(invalid(format!(
            "has a line of {} units of product {}; a line needs at least one",
            bad.quantity, bad.product_id
        )));
    }
    let mut wanted: BTreeMap<Uuid, i64> = BTreeMap::new();
    for l in lines {
        *wanted.entry(l.product_id).or_default() += i64::from(l.quantity);
    }
    let enough = wanted
        .iter()
        .all(|(product_id, units)| state.available(*product_id) >= *units);
    let event = if enough {
        updated(
            InventoryChange::Reserved,
            Some(order_id),
            lines.to_vec(),
            None,
            at,
        )
    } else {
        let reason = Some(REASON_OUT_OF_STOCK.to_owned());
        updated(
            InventoryChange::Rejected,
            Some(order_id),
            lines.to_vec(),
            reason,
            at,
        )
    };
    Ok(vec![event])
}

/// Folds one stock change into the rows.
fn apply(state: &mut Inventory, update: &InventoryUpdated) {
    if update.change != InventoryChange::Rejected {
        for l in &update.lines {
            let units = i64::from(l.quantity);
            let stock = state
                .stock
                .entry(l.product_id)
                .or_insert_with(|| Stock::new(l.product_id));
            match update.change {
                InventoryChange::Restocked | InventoryChange::Adjusted => {
                    stock.received += units;
                    stock.available += units;
                }
                InventoryChange::Reserved => {
                    stock.available -= units;
                    stock.reserved += units;
                }
                InventoryChange::Released => {
                    stock.reserved -= units;
                    stock.available += units;
                }
                InventoryChange::Sold => {
                    stock.reserved -= units;
                    stock.sold += units;
                }
                InventoryChange::Rejected => {}
            }
        }
    }
    let status = match update.change {
        InventoryChange::Reserved => ReservationStatus::Reserved,
        InventoryChange::Rejected => ReservationStatus::Rejected,
        InventoryChange::Released => ReservationStatus::Released,
        InventoryChange::Sold => ReservationStatus::Sold,
        InventoryChange::Restocked | InventoryChange::Adjusted => return,
    };
    if let Some(order_id) = update.order_id {
        let cause = state
            .reservations
            .get(&order_id)
            .and_then(|r| r.cause.clone());
        state.reservations.insert(
            order_id,
            Reservation {
                order_id,
                status,
                lines: update.lines.clone(),
                cause,
            },
        );
    }
}

/// The events `command` produces in `state` and the state after them.
pub fn decide_and_fold(
    state: &Inventory,
    command: &Command,
) -> Result<(Vec<Event>, Inventory), DomainError> {
    let decider = InventoryDecider;
    let events = decider.decide(state, command)?;
    let after = events
        .iter()
        .fold(state.clone(), |state, event| decider.evolve(state, event));
    Ok((events, after))
}

fn line(product_id: Uuid, quantity: i32) -> StockLine {
    StockLine {
        product_id,
        quantity,
    }
}

fn updated(
    change: InventoryChange,
    order_id: Option<Uuid>,
    lines: Vec<StockLine>,
    reason: Option<String>,
    updated_at: DateTime<Utc>,
) -> Event {
    InventoryUpdated {
        change,
        order_id,
        lines,
        reason,
        updated_at,
    }
    .into()
}

#[cfg(test)]
mod tests;
