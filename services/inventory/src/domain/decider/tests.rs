//! The inventory's rules as given/when/then scenarios.

use chrono::{DateTime, Utc};
use eventmart_events::catalog::ProductCreated;
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::{Currency, Event, Money};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::testing::Scenario;
use uuid::Uuid;

use super::{Command, DomainError, InventoryDecider, decide_and_fold};
use crate::domain::{Delta, Inventory, Quantity, Reason, ReservationStatus, Stock};

const APPLE: Uuid = Uuid::from_u128(0xa);
const PEAR: Uuid = Uuid::from_u128(0xb);
const ORDER: Uuid = Uuid::from_u128(0x1);

fn at() -> DateTime<Utc> {
    eventmart_events::timestamp::from_millis(1_714_564_800_123).unwrap()
}

fn line(product_id: Uuid, quantity: i32) -> StockLine {
    StockLine {
        product_id,
        quantity,
    }
}

fn product_created(product_id: Uuid) -> Event {
    ProductCreated {
        product_id,
        sku: "SKU-1".to_owned(),
        name: "Thing".to_owned(),
        price: Money::new(100, Currency::EUR),
        created_at: at(),
    }
    .into()
}

fn change(
    change: InventoryChange,
    order_id: Option<Uuid>,
    lines: Vec<StockLine>,
    reason: Option<&str>,
) -> Event {
    InventoryUpdated {
        change,
        order_id,
        lines,
        reason: reason.map(str::to_owned),
        updated_at: at(),
    }
    .into()
}

fn restocked(product_id: Uuid, quantity: i32) -> Event {
    change(
        InventoryChange::Restocked,
        None,
        vec![line(product_id, quantity)],
        None,
    )
}

fn reserved(order_id: Uuid, lines: Vec<StockLine>) -> Event {
    change(InventoryChange::Reserved, Some(order_id), lines, None)
}

fn rejected(order_id: Uuid, lines: Vec<StockLine>) -> Event {
    change(
        InventoryChange::Rejected,
        Some(order_id),
        lines,
        Some("out_of_stock"),
    )
}

fn released(order_id: Uuid, lines: Vec<StockLine>) -> Event {
    change(InventoryChange::Released, Some(order_id), lines, None)
}

fn sold(order_id: Uuid, lines: Vec<StockLine>) -> Event {
    change(InventoryChange::Sold, Some(order_id), lines, None)
}

fn restock(product_id: Uuid, quantity: i64) -> Command {
    Command::Restock {
        product_id,
        quantity: Quantity::parse(quantity).unwrap(),
        at: at(),
    }
}

fn adjust(product_id: Uuid, delta: i64, reason: &str) -> Command {
    Command::Adjust {
        product_id,
        delta: Delta::parse(delta).unwrap(),
        reason: Reason::parse(reason).unwrap(),
        at: at(),
    }
}

fn reserve(order_id: Uuid, lines: Vec<StockLine>) -> Command {
    Command::Reserve {
        order_id,
        lines,
        at: at(),
    }
}

fn stock(state: &Inventory, product_id: Uuid) -> (i64, i64, i64, i64) {
    let s = &state.stock[&product_id];
    assert!(s.is_sound(), "{s:?}");
    (s.received, s.available, s.reserved, s.sold)
}

fn scenario() -> Scenario<InventoryDecider> {
    Scenario::with(InventoryDecider)
}

#[test]
fn restocking_a_known_product_records_the_units_received() {
    scenario()
        .given([product_created(APPLE)])
        .when(restock(APPLE, 5))
        .then_expect_events([restocked(APPLE, 5)]);
}

#[test]
fn restocking_an_unknown_product_is_refused() {
    scenario()
        .when(restock(APPLE, 5))
        .then_expect_error(DomainError::UnknownProduct(APPLE));
}

#[test]
fn a_restock_raises_received_and_available() {
    let state = InventoryDecider.replay(&[product_created(APPLE), restocked(APPLE, 5)]);
    assert_eq!(stock(&state, APPLE), (5, 5, 0, 0));
}

#[test]
fn adjusting_moves_received_and_available_by_the_delta() {
    scenario()
        .given([product_created(APPLE), restocked(APPLE, 5)])
        .when(adjust(APPLE, -2, "damaged"))
        .then_expect_events([change(
            InventoryChange::Adjusted,
            None,
            vec![line(APPLE, -2)],
            Some("damaged"),
        )]);
    let (_, after) = decide_and_fold(
        &InventoryDecider.replay(&[product_created(APPLE), restocked(APPLE, 5)]),
        &adjust(APPLE, -2, "damaged"),
    )
    .unwrap();
    assert_eq!(stock(&after, APPLE), (3, 3, 0, 0));
}

#[test]
fn adjusting_below_zero_available_is_refused() {
    scenario()
        .given([
            product_created(APPLE),
            restocked(APPLE, 5),
            reserved(ORDER, vec![line(APPLE, 3)]),
        ])
        .when(adjust(APPLE, -3, "counted"))
        .then_expect_error(DomainError::InsufficientStock {
            product_id: APPLE,
            available: 2,
            delta: -3,
        });
}

#[test]
fn adjusting_down_to_exactly_nothing_is_allowed() {
    scenario()
        .given([product_created(APPLE), restocked(APPLE, 2)])
        .when(adjust(APPLE, -2, "lost"))
        .then_expect_events([change(
            InventoryChange::Adjusted,
            None,
            vec![line(APPLE, -2)],
            Some("lost"),
        )]);
}

#[test]
fn adjusting_an_unknown_product_is_refused() {
    scenario()
        .when(adjust(APPLE, 1, "found"))
        .then_expect_error(DomainError::UnknownProduct(APPLE));
}

#[test]
fn an_order_whose_every_line_is_available_is_reserved_whole() {
    let lines = vec![line(APPLE, 2), line(PEAR, 1)];
    scenario()
        .given([
            product_created(APPLE),
            product_created(PEAR),
            restocked(APPLE, 2),
            restocked(PEAR, 5),
        ])
        .when(reserve(ORDER, lines.clone()))
        .then_expect_events([reserved(ORDER, lines)]);
}

#[test]
fn a_reservation_moves_units_from_available_to_reserved() {
    let state = InventoryDecider.replay(&[
        product_created(APPLE),
        restocked(APPLE, 5),
        reserved(ORDER, vec![line(APPLE, 2), line(APPLE, 1)]),
    ]);
    assert_eq!(stock(&state, APPLE), (5, 2, 3, 0));
    assert_eq!(
        state.reservations[&ORDER].status,
        ReservationStatus::Reserved
    );
}

#[test]
fn an_order_with_one_line_short_is_rejected_and_nothing_is_reserved() {
    let lines = vec![line(APPLE, 2), line(PEAR, 6)];
    let given = [
        product_created(APPLE),
        product_created(PEAR),
        restocked(APPLE, 10),
        restocked(PEAR, 5),
    ];
    scenario()
        .given(given.clone())
        .when(reserve(ORDER, lines.clone()))
        .then_expect_events([rejected(ORDER, lines.clone())]);
    let (_, after) =
        decide_and_fold(&InventoryDecider.replay(&given), &reserve(ORDER, lines)).unwrap();
    assert_eq!(stock(&after, APPLE), (10, 10, 0, 0));
    assert_eq!(stock(&after, PEAR), (5, 5, 0, 0));
    assert_eq!(
        after.reservations[&ORDER].status,
        ReservationStatus::Rejected
    );
}

#[test]
fn repeated_products_in_an_order_are_counted_together() {
    let lines = vec![line(APPLE, 2), line(APPLE, 2)];
    scenario()
        .given([product_created(APPLE), restocked(APPLE, 3)])
        .when(reserve(ORDER, lines.clone()))
        .then_expect_events([rejected(ORDER, lines)]);
}

#[test]
fn an_unknown_product_counts_as_out_of_stock() {
    let lines = vec![line(APPLE, 1), line(PEAR, 1)];
    scenario()
        .given([product_created(APPLE), restocked(APPLE, 3)])
        .when(reserve(ORDER, lines.clone()))
        .then_expect_events([rejected(ORDER, lines)]);
}

#[test]
fn a_rejection_of_an_unknown_product_creates_no_stock_for_it() {
    let state = InventoryDecider.replay(&[rejected(ORDER, vec![line(PEAR, 1)])]);
    assert!(state.stock.is_empty());
}

#[test]
fn reserving_an_order_again_does_nothing() {
    scenario()
        .given([
            product_created(APPLE),
            restocked(APPLE, 5),
            reserved(ORDER, vec![line(APPLE, 1)]),
        ])
        .when(reserve(ORDER, vec![line(APPLE, 1)]))
        .then_expect_events([]);
    scenario()
        .given([rejected(ORDER, vec![line(APPLE, 1)])])
        .when(reserve(ORDER, vec![line(APPLE, 1)]))
        .then_expect_events([]);
}

#[test]
fn an_order_cancelled_before_its_reservation_reserves_nothing_later() {
    let cause = eventmart_events::Cause {
        event_id: Uuid::from_u128(7),
        correlation_id: Uuid::from_u128(7),
        traceparent: None,
    };
    let state = InventoryDecider
        .replay(&[product_created(APPLE), restocked(APPLE, 5)])
        .cancelled_before_reserving(ORDER, &cause);
    let (events, after) = decide_and_fold(&state, &reserve(ORDER, vec![line(APPLE, 1)])).unwrap();
    assert!(events.is_empty());
    assert_eq!(stock(&after, APPLE), (5, 5, 0, 0));
}

#[test]
fn an_order_without_lines_or_with_an_empty_line_is_invalid() {
    scenario()
        .when(reserve(ORDER, vec![]))
        .then_expect_error(DomainError::InvalidOrder {
            order_id: ORDER,
            reason: "has no lines".to_owned(),
        });
    let outcome = decide_and_fold(
        &Inventory::default(),
        &reserve(ORDER, vec![line(APPLE, 1), line(PEAR, 0)]),
    );
    assert!(
        matches!(outcome, Err(DomainError::InvalidOrder { order_id, .. }) if order_id == ORDER),
        "{outcome:?}"
    );
}

#[test]
fn cancelling_a_reserved_order_releases_its_lines() {
    let lines = vec![line(APPLE, 2)];
    let given = [
        product_created(APPLE),
        restocked(APPLE, 5),
        reserved(ORDER, lines.clone()),
    ];
    let release = Command::Release {
        order_id: ORDER,
        at: at(),
    };
    scenario()
        .given(given.clone())
        .when(release.clone())
        .then_expect_events([released(ORDER, lines)]);
    let (_, after) = decide_and_fold(&InventoryDecider.replay(&given), &release).unwrap();
    assert_eq!(stock(&after, APPLE), (5, 5, 0, 0));
    assert_eq!(
        after.reservations[&ORDER].status,
        ReservationStatus::Released
    );
}

#[test]
fn cancelling_an_order_that_holds_nothing_does_nothing() {
    let lines = vec![line(APPLE, 2)];
    let histories = [
        vec![],
        vec![rejected(ORDER, lines.clone())],
        vec![
            restocked(APPLE, 5),
            reserved(ORDER, lines.clone()),
            released(ORDER, lines.clone()),
        ],
        vec![
            restocked(APPLE, 5),
            reserved(ORDER, lines.clone()),
            sold(ORDER, lines.clone()),
        ],
    ];
    for history in histories {
        scenario()
            .given(history)
            .when(Command::Release {
                order_id: ORDER,
                at: at(),
            })
            .then_expect_events([]);
    }
}

#[test]
fn confirming_a_reserved_order_sells_its_lines() {
    let lines = vec![line(APPLE, 2)];
    let given = [
        product_created(APPLE),
        restocked(APPLE, 5),
        reserved(ORDER, lines.clone()),
    ];
    let sell = Command::Sell {
        order_id: ORDER,
        at: at(),
    };
    scenario()
        .given(given.clone())
        .when(sell.clone())
        .then_expect_events([sold(ORDER, lines)]);
    let (_, after) = decide_and_fold(&InventoryDecider.replay(&given), &sell).unwrap();
    assert_eq!(stock(&after, APPLE), (5, 3, 0, 2));
}

#[test]
fn confirming_a_sold_order_again_does_nothing() {
    let lines = vec![line(APPLE, 2)];
    scenario()
        .given([
            restocked(APPLE, 5),
            reserved(ORDER, lines.clone()),
            sold(ORDER, lines),
        ])
        .when(Command::Sell {
            order_id: ORDER,
            at: at(),
        })
        .then_expect_events([]);
}

#[test]
fn confirming_an_order_that_holds_nothing_is_a_contradiction() {
    scenario()
        .when(Command::Sell {
            order_id: ORDER,
            at: at(),
        })
        .then_expect_error(DomainError::NothingReserved {
            order_id: ORDER,
            status: None,
        });
    scenario()
        .given([rejected(ORDER, vec![line(APPLE, 1)])])
        .when(Command::Sell {
            order_id: ORDER,
            at: at(),
        })
        .then_expect_error(DomainError::NothingReserved {
            order_id: ORDER,
            status: Some(ReservationStatus::Rejected),
        });
}

#[test]
fn a_product_announced_again_keeps_its_stock() {
    let state = InventoryDecider.replay(&[
        product_created(APPLE),
        restocked(APPLE, 4),
        product_created(APPLE),
    ]);
    assert_eq!(state.stock[&APPLE], {
        let mut s = Stock::new(APPLE);
        s.received = 4;
        s.available = 4;
        s
    });
}
