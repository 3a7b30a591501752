//! What the inventory knows: a [`Stock`] row per product and a [`Reservation`] per order, and
//! the [`Inventory`] a decision sees, holding the rows it reads.

use std::collections::BTreeMap;

use eventmart_events::inventory::StockLine;
use eventmart_events::{Cause, Envelope};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The stock of one product. Always `received = available + reserved + sold`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stock {
    /// The product.
    pub product_id: Uuid,
    /// Every unit ever received, net of adjustments.
    pub received: i64,
    /// Units that can be reserved now.
    pub available: i64,
    /// Units held for orders that are not yet confirmed.
    pub reserved: i64,
    /// Units of confirmed orders.
    pub sold: i64,
}

impl Stock {
    /// A product with nothing in stock.
    pub fn new(product_id: Uuid) -> Self {
        Self {
            product_id,
            received: 0,
            available: 0,
            reserved: 0,
            sold: 0,
        }
    }

    /// Whether no count is negative and the units add up.
    pub fn is_sound(&self) -> bool {
        self.available >= 0
            && self.reserved >= 0
            && self.sold >= 0
            && self.received == self.available + self.reserved + self.sold
    }
}

/// Where an order's reservation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationStatus {
    /// Every line is held.
    Reserved,
    /// The order could not be reserved; nothing was held.
    Rejected,
    /// The order was cancelled and what it held was given back.
    Released,
    /// The order was confirmed and what it held was sold.
    Sold,
    /// The order was cancelled before any reservation: one arriving later does nothing.
    Cancelled,
}

impl ReservationStatus {
    /// The stored and answered symbol, e.g. `"RESERVED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Reserved => "RESERVED",
            ReservationStatus::Rejected => "REJECTED",
            ReservationStatus::Released => "RELEASED",
            ReservationStatus::Sold => "SOLD",
            ReservationStatus::Cancelled => "CANCELLED",
        }
    }
}

/// What the inventory did about one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The order.
    pub order_id: Uuid,
    /// Where it stands.
    pub status: ReservationStatus,
    /// The order's lines, as reserved or rejected (none when cancelled before any
    /// reservation).
    pub lines: Vec<StockLine>,
    /// The event that opened this reservation in the order's flow (its `order.created`, or
    /// what stood for it); known once the row is stored.
    #[serde(default)]
    pub cause: Option<Cause>,
}

/// The rows a decision reads: the stock of some products and the reservations of some orders.
/// A product or order that is not here is unknown (or was not read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Stock by product.
    pub stock: BTreeMap<Uuid, Stock>,
    /// Reservations by order.
    pub reservations: BTreeMap<Uuid, Reservation>,
}

impl Inventory {
    /// Units of `product_id` that can be reserved (0 for an unknown product).
    pub fn available(&self, product_id: Uuid) -> i64 {
        self.stock.get(&product_id).map_or(0, |s| s.available)
    }

    /// Records that `order_id` was cancelled before anything was reserved for it, so that its
    /// `order.created`, should it arrive late, reserves nothing. Leaves a reservation that
    /// exists as it is.
    pub fn cancelled_before_reserving(mut self, order_id: Uuid, cause: &Cause) -> Self {
        self.reservations
            .entry(order_id)
            .or_insert_with(|| Reservation {
                order_id,
                status: ReservationStatus::Cancelled,
                lines: Vec::new(),
                cause: Some(cause.clone()),
            });
        self
    }

    /// Names `cause` as what opened `order_id`'s reservation, unless one is named already.
    pub fn opened_by(mut self, order_id: Uuid, cause: &Cause) -> Self {
        if let Some(reservation) = self.reservations.get_mut(&order_id) {
            reservation.cause.get_or_insert_with(|| cause.clone());
        }
        self
    }
}

/// The flow a reservation belongs to, as the envelope of an event about it names it: the
/// event it names as its cause (itself when it names none), its correlation and its trace
/// context. Read off the event, so a state rebuilt from the topic finds the same.
pub fn reservation_cause(envelope: &Envelope) -> Cause {
    Cause {
        event_id: envelope.causation_id.unwrap_or(envelope.event_id),
        correlation_id: envelope.correlation_id,
        traceparent: envelope.traceparent.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(n: u128) -> Cause {
        Cause {
            event_id: Uuid::from_u128(n),
            correlation_id: Uuid::from_u128(n),
            traceparent: None,
        }
    }

    #[test]
    fn an_order_cancelled_before_any_reservation_is_remembered_as_cancelled() {
        let order = Uuid::from_u128(1);
        let inventory = Inventory::default().cancelled_before_reserving(order, &cause(9));
        let reservation = &inventory.reservations[&order];
        assert_eq!(reservation.status, ReservationStatus::Cancelled);
        assert!(reservation.lines.is_empty());
        assert_eq!(reservation.cause, Some(cause(9)));
    }

    #[test]
    fn a_cancellation_leaves_an_existing_reservation_alone() {
        let order = Uuid::from_u128(1);
        let mut inventory = Inventory::default();
        inventory.reservations.insert(
            order,
            Reservation {
                order_id: order,
                status: ReservationStatus::Released,
                lines: Vec::new(),
                cause: Some(cause(1)),
            },
        );
        let after = inventory
            .clone()
            .cancelled_before_reserving(order, &cause(2));
        assert_eq!(after, inventory);
    }

    #[test]
    fn the_first_cause_named_stays() {
        let order = Uuid::from_u128(1);
        let after = Inventory::default()
            .cancelled_before_reserving(order, &cause(1))
            .opened_by(order, &cause(2));
        assert_eq!(after.reservations[&order].cause, Some(cause(1)));
    }

    #[test]
    fn stock_is_sound_when_it_adds_up_and_nothing_is_negative() {
        let mut stock = Stock::new(Uuid::from_u128(3));
        assert!(stock.is_sound());
        stock.received = 5;
        stock.available = 3;
        stock.reserved = 2;
        assert!(stock.is_sound());
        stock.available = -1;
        stock.received = 1;
        assert!(!stock.is_sound());
    }
}
