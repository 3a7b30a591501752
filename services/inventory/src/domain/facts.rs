//! Stock changes reported from outside (an `inventory.updated` typed into kcat on the
//! inventory topic): accepted as facts and folded in as the service's own would be, unless
//! they cannot be true.
//!
//! A fact is refused when it is malformed (no lines, a count that is not positive, a
//! reservation change without its order, a restock or adjustment of more than one product),
//! contradicts what is known (reserving an order already decided, releasing or selling an
//! order that holds nothing or holds other lines), or would leave a product with fewer than
//! no units. A refused fact changes nothing; its caller dead-letters it with the reason.

use std::collections::BTreeMap;

use eventmart_events::Event;
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_runtime::decider::Decider;
use uuid::Uuid;

use super::decider::InventoryDecider;
use super::state::{Inventory, ReservationStatus};

/// Why a reported stock change cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{change} cannot be applied: {reason}", change = change.as_str())]
pub struct FactError {
    /// The change reported.
    pub change: InventoryChange,
    /// Why it cannot be true.
    pub reason: String,
}

/// The state after the reported `update`, or why it cannot be applied. `state` must hold
/// the stock of every product in its lines and, for a reservation change, the order's
/// reservation if it has one.
pub fn accept_fact(state: &Inventory, update: &InventoryUpdated) -> Result<Inventory, FactError> {
    let refuse = |reason: String| FactError {
        change: update.change,
        reason,
    };
    check_lines(update).map_err(refuse)?;
    if update.change.concerns_an_order() {
        let order_id = update
            .order_id
            .ok_or_else(|| refuse("it names no order_id".to_owned()))?;
        check_transition(state, order_id, update).map_err(refuse)?;
    }
    let after = InventoryDecider.evolve(state.clone(), &Event::InventoryUpdated(update.clone()));
    for l in &update.lines {
        if let Some(stock) = after.stock.get(&l.product_id)
            && !stock.is_sound()
        {
            return Err(refuse(format!(
                "it would leave product {} with {} available and {} reserved",
                l.product_id, stock.available, stock.reserved
            )));
        }
    }
    Ok(after)
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
    state: &Inventory,
    order_id: Uuid,
    update: &InventoryUpdated,
) -> Result<(), String> {
    let held = state.reservations.get(&order_id);
    match (update.change, held) {
        (InventoryChange::Reserved | InventoryChange::Rejected, None) => Ok(()),
        (InventoryChange::Reserved | InventoryChange::Rejected, Some(held)) => Err(format!(
            "order {order_id} is already {}",
            held.status.as_str()
        )),
        (_, Some(held)) if held.status == ReservationStatus::Reserved => {
            if units(&held.lines) == units(&update.lines) {
                Ok(())
            } else {
                Err(format!(
                    "its lines are not what order {order_id} holds: {:?}",
                    units(&held.lines)
                ))
            }
        }
        (_, held) => Err(format!(
            "order {order_id} holds nothing (its reservation is {})",
            held.map_or("absent", |h| h.status.as_str())
        )),
    }
}

/// Units per product.
fn units(lines: &[StockLine]) -> BTreeMap<Uuid, i64> {
    let mut units = BTreeMap::new();
    for l in lines {
        *units.entry(l.product_id).or_default() += i64::from(l.quantity);
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Stock;

    const APPLE: Uuid = Uuid::from_u128(0xa);
    const ORDER: Uuid = Uuid::from_u128(0x1);

    fn fact(
        change: InventoryChange,
        order_id: Option<Uuid>,
        lines: &[(Uuid, i32)],
    ) -> InventoryUpdated {
        InventoryUpdated {
            change,
            order_id,
            lines: lines
                .iter()
                .map(|(product_id, quantity)| StockLine {
                    product_id: *product_id,
                    quantity: *quantity,
                })
                .collect(),
            reason: None,
            updated_at: eventmart_events::timestamp::now(),
        }
    }

    fn given(facts: &[InventoryUpdated]) -> Inventory {
        facts.iter().fold(Inventory::default(), |state, f| {
            accept_fact(&state, f).expect("a valid history")
        })
    }

    fn counts(state: &Inventory) -> (i64, i64, i64, i64) {
        let s: &Stock = &state.stock[&APPLE];
        (s.received, s.available, s.reserved, s.sold)
    }

    #[test]
    fn a_reported_restock_of_an_unknown_product_creates_its_stock() {
        let after = given(&[fact(InventoryChange::Restocked, None, &[(APPLE, 4)])]);
        assert_eq!(counts(&after), (4, 4, 0, 0));
    }

    #[test]
    fn a_reported_reservation_release_and_sale_move_stock_as_decided_ones_do() {
        let restock = fact(InventoryChange::Restocked, None, &[(APPLE, 5)]);
        let reserve = fact(InventoryChange::Reserved, Some(ORDER), &[(APPLE, 2)]);
        let state = given(&[restock.clone(), reserve.clone()]);
        assert_eq!(counts(&state), (5, 3, 2, 0));
        let sold = given(&[
            restock.clone(),
            reserve.clone(),
            fact(InventoryChange::Sold, Some(ORDER), &[(APPLE, 2)]),
        ]);
        assert_eq!(counts(&sold), (5, 3, 0, 2));
        let released = given(&[
            restock,
            reserve,
            fact(InventoryChange::Released, Some(ORDER), &[(APPLE, 2)]),
        ]);
        assert_eq!(counts(&released), (5, 5, 0, 0));
        assert_eq!(
            released.reservations[&ORDER].status,
            ReservationStatus::Released
        );
    }

    #[test]
    fn a_fact_without_lines_or_with_a_non_positive_count_is_refused() {
        let state = Inventory::default();
        for bad in [
            fact(InventoryChange::Restocked, None, &[]),
            fact(InventoryChange::Restocked, None, &[(APPLE, 0)]),
            fact(InventoryChange::Reserved, Some(ORDER), &[(APPLE, -1)]),
            fact(InventoryChange::Adjusted, None, &[(APPLE, 0)]),
            fact(InventoryChange::Restocked, None, &[(APPLE, 1), (APPLE, 1)]),
        ] {
            assert!(accept_fact(&state, &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_reservation_change_without_its_order_is_refused() {
        let state = given(&[fact(InventoryChange::Restocked, None, &[(APPLE, 5)])]);
        let error = accept_fact(
            &state,
            &fact(InventoryChange::Reserved, None, &[(APPLE, 1)]),
        )
        .unwrap_err();
        assert!(error.reason.contains("order_id"), "{error}");
    }

    #[test]
    fn a_fact_that_would_leave_negative_stock_is_refused() {
        let state = given(&[fact(InventoryChange::Restocked, None, &[(APPLE, 1)])]);
        for bad in [
            fact(InventoryChange::Reserved, Some(ORDER), &[(APPLE, 2)]),
            fact(InventoryChange::Adjusted, None, &[(APPLE, -2)]),
        ] {
            let error = accept_fact(&state, &bad).unwrap_err();
            assert!(error.reason.contains("would leave"), "{error}");
        }
    }

    #[test]
    fn deciding_an_order_twice_or_releasing_what_is_not_held_is_refused() {
        let restock = fact(InventoryChange::Restocked, None, &[(APPLE, 5)]);
        let reserve = fact(InventoryChange::Reserved, Some(ORDER), &[(APPLE, 2)]);
        let state = given(&[restock.clone(), reserve.clone()]);
        assert!(accept_fact(&state, &reserve).is_err());
        let other_lines = fact(InventoryChange::Released, Some(ORDER), &[(APPLE, 1)]);
        assert!(accept_fact(&state, &other_lines).is_err());
        let nothing_held = given(&[restock]);
        let release = fact(InventoryChange::Released, Some(ORDER), &[(APPLE, 2)]);
        assert!(accept_fact(&nothing_held, &release).is_err());
    }
}
