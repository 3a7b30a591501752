//! What an `inventory.updated` does to the stock figures, as the inventory service itself
//! folds it (`services/inventory/src/domain/`):
//!
//! - RESTOCKED adds its quantity to `received` and `available`; ADJUSTED adds its signed
//!   delta to both (a negative delta takes units away);
//! - RESERVED moves each line's quantity from `available` to `reserved`, RELEASED from
//!   `reserved` back to `available`, SOLD from `reserved` to `sold`;
//! - REJECTED moves nothing.
//!
//! Every move keeps `received = available + reserved + sold`, so the figures add up once
//! every event has arrived, whatever order they arrived in.
//!
//! The inventory refuses (dead-letters) an `inventory.updated` typed in by hand that cannot
//! be true, and such an event moves nothing here either, when the refusal depends on the
//! event and its order's earlier events alone: a malformed event (no lines, a count that is
//! not positive, a zero delta, a restock or adjustment of several products, an order's
//! change without its order), deciding an order twice, or releasing or selling what the
//! order does not hold. An order's events share its partition, so every replay sees them
//! in the same order and refuses the same ones. What the inventory refuses because of the
//! stock at the moment the event reached it (it would leave fewer than no units) depends on
//! how the topics interleaved there, and is counted here.

use std::collections::BTreeMap;
use std::fmt;

use eventmart_events::inventory::{InventoryChange, InventoryUpdated};
use uuid::Uuid;

/// A product's stock figures, or what an event moves them by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every unit ever received, net of adjustments.
    pub received: i64,
    /// Units that can be reserved now.
    pub available: i64,
    /// Units held for orders that are not yet confirmed.
    pub reserved: i64,
    /// Units of confirmed orders.
    pub sold: i64,
}

impl Counts {
    /// These figures moved by `delta`.
    pub fn plus(self, delta: Counts) -> Counts {
        Counts {
            received: self.received + delta.received,
            available: self.available + delta.available,
            reserved: self.reserved + delta.reserved,
            sold: self.sold + delta.sold,
        }
    }

    /// Whether the units add up: `received = available + reserved + sold`.
    pub fn adds_up(&self) -> bool {
        self.received == self.available + self.reserved + self.sold
    }

    /// The move of `units` units by an event of kind `change`.
    fn moved(change: InventoryChange, units: i64) -> Counts {
        let zero = Counts::default();
        match change {
            InventoryChange::Restocked | InventoryChange::Adjusted => Counts {
                received: units,
                available: units,
                ..zero
            },
            InventoryChange::Reserved => Counts {
                available: -units,
                reserved: units,
                ..zero
            },
            InventoryChange::Released => Counts {
                available: units,
                reserved: -units,
                ..zero
            },
            InventoryChange::Sold => Counts {
                reserved: -units,
                sold: units,
                ..zero
            },
            InventoryChange::Rejected => zero,
        }
    }
}

/// Where an order's reservation stands, as its `inventory.updated` events say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    /// Every line is held.
    Reserved,
    /// The order could not be reserved; nothing was held.
    Rejected,
    /// What the order held was given back.
    Released,
    /// What the order held was sold.
    Sold,
}

/// A status name that is none of RESERVED, REJECTED, RELEASED, SOLD.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be one of RESERVED, REJECTED, RELEASED, SOLD, got {0:?}")]
pub struct InvalidReservationStatus(pub String);

impl ReservationStatus {
    /// Every status.
    pub const ALL: [ReservationStatus; 4] = [
        ReservationStatus::Reserved,
        ReservationStatus::Rejected,
        ReservationStatus::Released,
        ReservationStatus::Sold,
    ];

    /// The stored name, the change's wire symbol: `RESERVED`, `REJECTED`, …
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Reserved => "RESERVED",
            ReservationStatus::Rejected => "REJECTED",
            ReservationStatus::Released => "RELEASED",
            ReservationStatus::Sold => "SOLD",
        }
    }

    /// Reads a stored name back.
    pub fn parse(text: &str) -> Result<Self, InvalidReservationStatus> {
        ReservationStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| InvalidReservationStatus(text.to_owned()))
    }

    /// The status an order's change leads to; `None` for restocks and adjustments.
    fn after(change: InventoryChange) -> Option<Self> {
        match change {
            InventoryChange::Reserved => Some(ReservationStatus::Reserved),
            InventoryChange::Rejected => Some(ReservationStatus::Rejected),
            InventoryChange::Released => Some(ReservationStatus::Released),
            InventoryChange::Sold => Some(ReservationStatus::Sold),
            InventoryChange::Restocked | InventoryChange::Adjusted => None,
        }
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order's reservation: where it stands and the units of its lines by product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Where it stands.
    pub status: ReservationStatus,
    /// Units by product, the order's lines summed (a product may be on several lines).
    pub units: BTreeMap<Uuid, i64>,
}

/// Why the inventory refuses an `inventory.updated`, so that it moves nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{change} moves nothing: {reason}", change = change.as_str())]
pub struct Refused {
    /// The change refused.
    pub change: InventoryChange,
    /// Why it cannot be true.
    pub reason: String,
}

/// What an accepted `inventory.updated` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockChange {
    /// What each product's figures move by (none for REJECTED).
    pub moves: BTreeMap<Uuid, Counts>,
    /// For an order's change, the order and its reservation after it.
    pub reservation: Option<(Uuid, Reservation)>,
}

/// What `update` does, given what this view holds of its order's reservation (`held`,
/// `None` for a restock or adjustment or an order not seen yet); see the
/// [module docs](self).
pub fn apply(
    update: &InventoryUpdated,
    held: Option<&Reservation>,
) -> Result<StockChange, Refused> {
    let refuse = |reason: String| Refused {
        change: update.change,
        reason,
    };
    check_lines(update).map_err(refuse)?;
    let units = units(update);
    let reservation = match ReservationStatus::after(update.change) {
        None => None,
        Some(status) => {
            let order_id = update
                .order_id
                .ok_or_else(|| refuse("it names no order_id".to_owned()))?;
            check_transition(update.change, held, &units).map_err(refuse)?;
            Some((
                order_id,
                Reservation {
                    status,
                    units: units.clone(),
                },
            ))
        }
    };
    let moves = match update.change {
        InventoryChange::Rejected => BTreeMap::new(),
        change => units
            .into_iter()
            .map(|(product_id, units)| (product_id, Counts::moved(change, units)))
            .collect(),
    };
    Ok(StockChange { moves, reservation })
}

/// Lines are present and each count fits the change.
fn check_lines(update: &InventoryUpdated) -> Result<(), String> {
    let Some(first) = update.lines.first() else {
        return Err("it has no lines".to_owned());
    };
    match update.change {
        InventoryChange::Restocked | InventoryChange::Adjusted if update.lines.len() > 1 => {
            Err(format!(
                "it has {} lines; a restock or adjustment concerns exactly one product",
                update.lines.len()
            ))
        }
        InventoryChange::Adjusted if first.quantity == 0 => {
            Err("its delta is zero; an adjustment moves at least one unit".to_owned())
        }
        InventoryChange::Adjusted => Ok(()),
        _ => match update.lines.iter().find(|l| l.quantity <= 0) {
            Some(bad) => Err(format!(
                "its line for product {} has quantity {}; it must be positive",
                bad.product_id, bad.quantity
            )),
            None => Ok(()),
        },
    }
}

/// The order's reservation may take this change: a decision only for an order not decided
/// yet, a release or a sale only of exactly what the order holds.
fn check_transition(
    change: InventoryChange,
    held: Option<&Reservation>,
    units: &BTreeMap<Uuid, i64>,
) -> Result<(), String> {
    match (change, held) {
        (InventoryChange::Reserved | InventoryChange::Rejected, None) => Ok(()),
        (InventoryChange::Reserved | InventoryChange::Rejected, Some(held)) => {
            Err(format!("the order is already {}", held.status))
        }
        (_, Some(held)) if held.status == ReservationStatus::Reserved => {
            if held.units == *units {
                Ok(())
            } else {
                Err(format!(
                    "its lines are not what the order holds: {:?}",
                    held.units
                ))
            }
        }
        (_, held) => Err(format!(
            "the order holds nothing (its reservation is {})",
            held.map_or("absent", |h| h.status.as_str())
        )),
    }
}

/// Units by product.
fn units(update: &InventoryUpdated) -> BTreeMap<Uuid, i64> {
    let mut units = BTreeMap::new();
    for line in &update.lines {
        *units.entry(line.product_id).or_default() += i64::from(line.quantity);
    }
    units
}

#[cfg(test)]
mod tests {
    use eventmart_events::inventory::StockLine;

    use super::*;

    const APPLE: Uuid = Uuid::from_u128(0xa);
    const PEAR: Uuid = Uuid::from_u128(0xb);
    const ORDER: Uuid = Uuid::from_u128(1);

    fn update(
        change: InventoryChange,
        order_id: Option<Uuid>,
        lines: &[(Uuid, i32)],
    ) -> InventoryUpdated {
        InventoryUpdated {
            change,
            order_id,
            lines: lines
                .iter()
                .map(|&(product_id, quantity)| StockLine {
                    product_id,
                    quantity,
                })
                .collect(),
            reason: None,
            updated_at: eventmart_events::timestamp::now(),
        }
    }

    /// The figures of `product` and the order's reservation after `updates` in order,
    /// each refused one skipped.
    fn given(updates: &[InventoryUpdated], product: Uuid) -> (Counts, Option<Reservation>) {
        let mut counts = Counts::default();
        let mut held = None;
        for update in updates {
            let Ok(change) = apply(update, held.as_ref()) else {
                continue;
            };
            if let Some(delta) = change.moves.get(&product) {
                counts = counts.plus(*delta);
            }
            if let Some((_, reservation)) = change.reservation {
                held = Some(reservation);
            }
        }
        (counts, held)
    }

    fn counts(received: i64, available: i64, reserved: i64, sold: i64) -> Counts {
        Counts {
            received,
            available,
            reserved,
            sold,
        }
    }

    #[test]
    fn a_restock_and_an_adjustment_add_to_received_and_available() {
        let (figures, held) = given(
            &[
                update(InventoryChange::Restocked, None, &[(APPLE, 5)]),
                update(InventoryChange::Adjusted, None, &[(APPLE, -2)]),
                update(InventoryChange::Adjusted, None, &[(APPLE, 1)]),
            ],
            APPLE,
        );
        assert_eq!(figures, counts(4, 4, 0, 0));
        assert_eq!(held, None);
    }

    #[test]
    fn a_reservation_moves_units_to_reserved_and_a_sale_from_there_to_sold() {
        let restock = update(InventoryChange::Restocked, None, &[(APPLE, 5)]);
        let reserve = update(
            InventoryChange::Reserved,
            Some(ORDER),
            &[(APPLE, 2), (PEAR, 1), (APPLE, 1)],
        );
        let (figures, held) = given(&[restock.clone(), reserve.clone()], APPLE);
        assert_eq!(figures, counts(5, 2, 3, 0));
        assert_eq!(held.map(|h| h.status), Some(ReservationStatus::Reserved));

        let sell = update(InventoryChange::Sold, Some(ORDER), &[(APPLE, 3), (PEAR, 1)]);
        let (figures, held) = given(&[restock, reserve, sell], APPLE);
        assert_eq!(figures, counts(5, 2, 0, 3));
        assert!(figures.adds_up());
        assert_eq!(held.map(|h| h.status), Some(ReservationStatus::Sold));
    }

    #[test]
    fn a_release_gives_the_reserved_units_back() {
        let (figures, held) = given(
            &[
                update(InventoryChange::Restocked, None, &[(APPLE, 5)]),
                update(InventoryChange::Reserved, Some(ORDER), &[(APPLE, 2)]),
                update(InventoryChange::Released, Some(ORDER), &[(APPLE, 2)]),
            ],
            APPLE,
        );
        assert_eq!(figures, counts(5, 5, 0, 0));
        assert_eq!(held.map(|h| h.status), Some(ReservationStatus::Released));
    }

    #[test]
    fn a_rejection_moves_nothing_but_decides_the_order() {
        let rejected = update(InventoryChange::Rejected, Some(ORDER), &[(APPLE, 9)]);
        let change = apply(&rejected, None).unwrap();
        assert!(change.moves.is_empty());
        let (_, reservation) = change.reservation.unwrap();
        assert_eq!(reservation.status, ReservationStatus::Rejected);
        // A reservation of the same order after it is refused.
        let reserve = update(InventoryChange::Reserved, Some(ORDER), &[(APPLE, 1)]);
        assert!(apply(&reserve, Some(&reservation)).is_err());
    }

    #[test]
    fn malformed_updates_are_refused_whatever_the_stock() {
        for bad in [
            update(InventoryChange::Restocked, None, &[]),
            update(InventoryChange::Restocked, None, &[(APPLE, 0)]),
            update(InventoryChange::Restocked, None, &[(APPLE, 1), (PEAR, 1)]),
            update(InventoryChange::Adjusted, None, &[(APPLE, 0)]),
            update(InventoryChange::Reserved, Some(ORDER), &[(APPLE, -1)]),
            update(InventoryChange::Reserved, None, &[(APPLE, 1)]),
            update(InventoryChange::Sold, None, &[(APPLE, 1)]),
        ] {
            assert!(apply(&bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn deciding_an_order_twice_or_releasing_what_it_does_not_hold_moves_nothing() {
        let restock = update(InventoryChange::Restocked, None, &[(APPLE, 5)]);
        let reserve = update(InventoryChange::Reserved, Some(ORDER), &[(APPLE, 2)]);
        let sell = update(InventoryChange::Sold, Some(ORDER), &[(APPLE, 2)]);
        // Reserved twice (the same event again, or another one), sold twice, released
        // after the sale: only the first reservation and sale count.
        let (figures, _) = given(
            &[
                restock.clone(),
                reserve.clone(),
                reserve.clone(),
                update(InventoryChange::Reserved, Some(ORDER), &[(APPLE, 2)]),
                sell.clone(),
                sell,
                update(InventoryChange::Released, Some(ORDER), &[(APPLE, 2)]),
            ],
            APPLE,
        );
        assert_eq!(figures, counts(5, 3, 0, 2));

        // Released before anything was reserved, or with other lines than it holds.
        let (figures, held) = given(
            &[
                restock,
                update(InventoryChange::Released, Some(ORDER), &[(APPLE, 2)]),
                reserve,
                update(InventoryChange::Released, Some(ORDER), &[(APPLE, 1)]),
            ],
            APPLE,
        );
        assert_eq!(figures, counts(5, 3, 2, 0));
        assert_eq!(held.map(|h| h.status), Some(ReservationStatus::Reserved));
    }

    #[test]
    fn statuses_read_back_from_their_names() {
        for status in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(status.as_str()), Ok(status));
        }
        assert!(ReservationStatus::parse("CANCELLED").is_err());
    }
}
