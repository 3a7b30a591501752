//! The sales rules, event by event and over every arrival order.

use chrono::TimeZone;
use eventmart_events::Currency;
use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated};
use eventmart_events::users::UserRegistered;

use std::collections::BTreeMap;

use super::*;

const ORDER: Uuid = Uuid::from_u128(1);
const USER: Uuid = Uuid::from_u128(2);
const BOOK: Uuid = Uuid::from_u128(3);
const PEN: Uuid = Uuid::from_u128(4);

/// `seconds` after 2023-11-14T22:13:20Z.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn line(product_id: Uuid, quantity: i32, cents: i64, currency: Currency) -> OrderLine {
    OrderLine {
        product_id,
        quantity,
        unit_price: Money::new(cents, currency),
    }
}

fn created_with(lines: Vec<OrderLine>) -> Event {
    let cents = lines
        .iter()
        .map(|l| i64::from(l.quantity).wrapping_mul(l.unit_price.cents))
        .fold(0i64, i64::wrapping_add);
    OrderCreated {
        order_id: ORDER,
        user_id: USER,
        lines,
        total: Money::new(cents, Currency::EUR),
        payment_token: None,
        created_at: at(0),
    }
    .into()
}

/// Two books at 12.50 and a pen at 3.00, in euros.
fn created() -> Event {
    created_with(vec![
        line(BOOK, 2, 1250, Currency::EUR),
        line(PEN, 1, 300, Currency::EUR),
    ])
}

fn confirmed(seconds: i64) -> Event {
    OrderConfirmed {
        order_id: ORDER,
        payment_id: Uuid::from_u128(9),
        confirmed_at: at(seconds),
    }
    .into()
}

fn cancelled(seconds: i64) -> Event {
    OrderCancelled {
        order_id: ORDER,
        reason: CancellationReason::Timeout,
        detail: None,
        cancelled_at: at(seconds),
    }
    .into()
}

/// What the order ends as, and every sale counted on the way, applying `events` as the
/// projector does: a sale is counted when the order becomes one.
fn apply(events: &[Event]) -> (Option<OrderSale>, Vec<Sale>) {
    let mut known: Option<OrderSale> = None;
    let mut counted = Vec::new();
    for event in events {
        let Some((order_id, change)) = change_of(event) else {
            continue;
        };
        let was_counted = known.as_ref().is_some_and(OrderSale::is_counted);
        let next = OrderSale::fold(known, order_id, &change);
        if !was_counted && let Some(sale) = next.sale().unwrap() {
            counted.push(sale);
        }
        known = Some(next);
    }
    (known, counted)
}

/// Every ordering of `items`.
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            out.push(tail);
        }
    }
    out
}

#[test]
fn a_confirmed_order_sells_its_lines_on_the_day_of_its_confirmation() {
    // given an order placed late on one day, when it is confirmed just after midnight UTC
    let (known, counted) = apply(&[created(), confirmed(2 * 3600)]);
    // then it is one sale, on the confirmation's day, per product
    assert!(known.unwrap().is_counted());
    assert_eq!(
        counted,
        [Sale {
            day: Day::parse("2023-11-15").unwrap(),
            items: vec![
                Item {
                    product_id: BOOK,
                    currency: Currency::EUR,
                    units: 2,
                    revenue_cents: 2500
                },
                Item {
                    product_id: PEN,
                    currency: Currency::EUR,
                    units: 1,
                    revenue_cents: 300
                },
            ],
        }]
    );
}

#[test]
fn a_confirmation_that_arrives_first_waits_for_its_order() {
    // given a confirmation and no order yet
    let (known, counted) = apply(&[confirmed(5)]);
    // then nothing is sold yet, and the confirmation is kept
    let known = known.unwrap();
    assert!(!known.is_counted());
    assert_eq!(known.decision, Some(Decision::Confirmed { at: at(5) }));
    assert!(counted.is_empty());
    // when the order arrives, then it is sold on the confirmation's day
    let (_, counted) = apply(&[confirmed(5), created()]);
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0].day, Day::of(at(5)).unwrap());
}

#[test]
fn a_pending_order_is_no_sale() {
    let (known, counted) = apply(&[created()]);
    assert!(!known.unwrap().is_counted());
    assert!(counted.is_empty());
}

#[test]
fn a_cancelled_order_is_never_a_sale_even_if_a_confirmation_follows() {
    for events in [
        vec![created(), cancelled(1)],
        vec![created(), cancelled(1), confirmed(2)],
        vec![cancelled(1), confirmed(2), created()],
    ] {
        let (known, counted) = apply(&events);
        let known = known.unwrap();
        assert_eq!(known.decision, Some(Decision::Cancelled { at: at(1) }));
        assert!(!known.is_counted());
        assert!(counted.is_empty(), "{events:?}");
    }
}

#[test]
fn a_confirmed_order_stays_sold_whatever_follows() {
    let (known, counted) = apply(&[created(), confirmed(1), cancelled(2), confirmed(3)]);
    assert!(known.unwrap().is_counted());
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0].day, Day::of(at(1)).unwrap());
}

#[test]
fn a_second_order_created_does_not_change_what_was_sold() {
    let other = created_with(vec![line(PEN, 9, 1, Currency::USD)]);
    let (known, counted) = apply(&[created(), other, confirmed(1)]);
    assert_eq!(known.unwrap().placed.unwrap().lines.len(), 2);
    assert_eq!(counted[0].items.len(), 2);
    assert_eq!(counted[0].items[0].product_id, BOOK);
}

#[test]
fn lines_add_up_per_product_and_currency() {
    // given lines of the same product at two prices and in two currencies
    let order = created_with(vec![
        line(PEN, 1, 300, Currency::USD),
        line(BOOK, 1, 1000, Currency::EUR),
        line(BOOK, 3, 900, Currency::EUR),
        line(BOOK, 2, 1100, Currency::USD),
    ]);
    let (_, counted) = apply(&[order, confirmed(1)]);
    let items: Vec<_> = counted[0]
        .items
        .iter()
        .map(|i| (i.product_id, i.currency.as_str(), i.units, i.revenue_cents))
        .collect();
    // then each product's units and revenue are summed per currency
    assert_eq!(
        items,
        [
            (BOOK, "EUR", 4, 3700),
            (BOOK, "USD", 2, 2200),
            (PEN, "USD", 1, 300)
        ]
    );
}

#[test]
fn a_revenue_that_does_not_fit_in_64_bits_is_uncountable() {
    let order = created_with(vec![line(BOOK, 2, i64::MAX / 2 + 1, Currency::EUR)]);
    let Some((order_id, Change::Placed(placed))) = change_of(&order) else {
        panic!("order.created");
    };
    let known = OrderSale {
        order_id,
        placed: Some(placed),
        decision: Some(Decision::Confirmed { at: at(1) }),
    };
    assert_eq!(known.sale(), Err(Uncountable::Overflow(BOOK)));
}

#[test]
fn a_confirmation_outside_four_digit_years_is_uncountable() {
    let far = Utc.with_ymd_and_hms(12_000, 1, 1, 0, 0, 0).unwrap();
    let Some((order_id, Change::Placed(placed))) = change_of(&created()) else {
        panic!("order.created");
    };
    let known = OrderSale {
        order_id,
        placed: Some(placed),
        decision: Some(Decision::Confirmed { at: far }),
    };
    assert_eq!(known.sale(), Err(Uncountable::Day(DayOutOfRange(far))));
}

#[test]
fn events_that_are_not_about_orders_say_nothing() {
    let registered: Event = UserRegistered {
        user_id: USER,
        email: "ada@example.com".into(),
        name: "Ada".into(),
        registered_at: at(0),
    }
    .into();
    assert_eq!(change_of(&registered), None);
}

/// Figures per (product, day, currency): units, revenue and orders, from applying `events`
/// of any number of orders as the projector does.
fn figures(events: &[Event]) -> BTreeMap<(Uuid, Day, Currency), (i64, i64, i64)> {
    let mut known: BTreeMap<Uuid, OrderSale> = BTreeMap::new();
    let mut figures = BTreeMap::new();
    for event in events {
        let Some((order_id, change)) = change_of(event) else {
            continue;
        };
        let current = known.remove(&order_id);
        let was_counted = current.as_ref().is_some_and(OrderSale::is_counted);
        let next = OrderSale::fold(current, order_id, &change);
        if !was_counted && let Some(sale) = next.sale().unwrap() {
            for item in sale.items {
                let (units, revenue, orders) = figures
                    .entry((item.product_id, sale.day, item.currency))
                    .or_insert((0, 0, 0));
                *units += item.units;
                *revenue += item.revenue_cents;
                *orders += 1;
            }
        }
        known.insert(order_id, next);
    }
    figures
}

/// `event` about order `order_id` instead.
fn about(order_id: Uuid, mut event: Event) -> Event {
    match &mut event {
        Event::OrderCreated(e) => e.order_id = order_id,
        Event::OrderConfirmed(e) => e.order_id = order_id,
        Event::OrderCancelled(e) => e.order_id = order_id,
        _ => {}
    }
    event
}

#[test]
fn the_figures_are_the_same_whatever_the_arrival_order_and_however_often() {
    // given three orders: one confirmed the first day, one the next, one cancelled
    let (a, b, c) = (
        Uuid::from_u128(11),
        Uuid::from_u128(12),
        Uuid::from_u128(13),
    );
    let events = [
        about(a, created()),
        about(a, confirmed(10)),
        about(b, created_with(vec![line(BOOK, 1, 1250, Currency::EUR)])),
        about(b, confirmed(86_400)),
        about(c, created()),
        about(c, cancelled(20)),
    ];
    let expected = figures(&events);
    let (first, second) = (Day::of(at(10)).unwrap(), Day::of(at(86_400)).unwrap());
    assert_eq!(
        expected.into_iter().collect::<Vec<_>>(),
        [
            ((BOOK, first, Currency::EUR), (2, 2500, 1)),
            ((BOOK, second, Currency::EUR), (1, 1250, 1)),
            ((PEN, first, Currency::EUR), (1, 300, 1)),
        ]
    );
    let expected = figures(&events);
    // when they arrive in any order, then the figures are the same
    for order in permutations(&events) {
        let kinds: Vec<_> = order
            .iter()
            .map(|e| (e.event_type(), e.aggregate_id()))
            .collect();
        assert_eq!(figures(&order), expected, "arrival order {kinds:?}");
    }
    // when every event is delivered twice, then each order is still counted once
    let mut twice = events.to_vec();
    twice.extend(events.iter().rev().cloned());
    assert_eq!(figures(&twice), expected);
}
