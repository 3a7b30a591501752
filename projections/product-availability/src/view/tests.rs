//! The model's rules, event by event and for whole histories in any arrival order.

use std::collections::{BTreeMap, BTreeSet};

use chrono::TimeZone;
use eventmart_events::catalog::{ProductCreated, ProductPriceChanged};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::users::UserRegistered;
use eventmart_events::{Currency, Envelope};

use super::*;

const APPLE: Uuid = Uuid::from_u128(0xa);
const PEAR: Uuid = Uuid::from_u128(0xb);
const ORDER_A: Uuid = Uuid::from_u128(1);
const ORDER_B: Uuid = Uuid::from_u128(2);
const ORDER_C: Uuid = Uuid::from_u128(3);

/// `seconds` after a fixed instant.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn eur(cents: i64) -> Money {
    Money::new(cents, Currency::EUR)
}

fn created(product_id: Uuid, sku: &str, cents: i64, seconds: i64) -> Event {
    ProductCreated {
        product_id,
        sku: sku.into(),
        name: format!("{sku} (name)"),
        price: eur(cents),
        created_at: at(seconds),
    }
    .into()
}

fn repriced(product_id: Uuid, cents: i64, seconds: i64) -> Event {
    ProductPriceChanged {
        product_id,
        price: eur(cents),
        changed_at: at(seconds),
    }
    .into()
}

fn stock(
    change: InventoryChange,
    order_id: Option<Uuid>,
    lines: &[(Uuid, i32)],
    seconds: i64,
) -> Event {
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
        updated_at: at(seconds),
    }
    .into()
}

/// The event with its envelope, each with its own id.
fn enveloped(event: Event) -> (Event, Envelope) {
    let envelope = Envelope::new(&event);
    (event, envelope)
}

/// Every product after applying `events` in the given order, as the projector does: each
/// move recorded once by (product, event id), each order's reservation kept.
fn apply(events: &[(Event, Envelope)]) -> BTreeMap<Uuid, Availability> {
    let mut products: BTreeMap<Uuid, Availability> = BTreeMap::new();
    let mut reservations: BTreeMap<Uuid, Reservation> = BTreeMap::new();
    let mut moved: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    for (event, envelope) in events {
        let mut changes = Vec::new();
        if let Some(change) = catalog_change(event, envelope) {
            changes.push(change);
        }
        if let Event::InventoryUpdated(update) = event {
            let held = update.order_id.and_then(|id| reservations.get(&id));
            let Ok(change) = stock::apply(update, held) else {
                continue;
            };
            if let Some((order_id, reservation)) = change.reservation {
                reservations.insert(order_id, reservation);
            }
            for (product_id, delta) in change.moves {
                if moved.insert((product_id, envelope.event_id)) {
                    changes.push((product_id, Change::Moved(delta)));
                }
            }
        }
        for (product_id, change) in changes {
            let current = products.remove(&product_id);
            let next = Availability::fold(current, product_id, &change, envelope.occurred_at);
            products.insert(product_id, next);
        }
    }
    products
}

/// A catalog of two products, their stock and three orders: A reserved then sold, B
/// reserved then released, C rejected.
fn history() -> Vec<(Event, Envelope)> {
    use InventoryChange::*;
    [
        created(APPLE, "APL", 120, 0),
        created(PEAR, "PER", 90, 1),
        repriced(APPLE, 150, 5),
        repriced(APPLE, 140, 3),
        stock(Restocked, None, &[(APPLE, 10)], 2),
        stock(Restocked, None, &[(PEAR, 4)], 2),
        stock(Adjusted, None, &[(APPLE, -1)], 4),
        stock(Reserved, Some(ORDER_A), &[(APPLE, 2), (PEAR, 1)], 6),
        stock(Sold, Some(ORDER_A), &[(APPLE, 2), (PEAR, 1)], 8),
        stock(Reserved, Some(ORDER_B), &[(APPLE, 3)], 7),
        stock(Released, Some(ORDER_B), &[(APPLE, 3)], 9),
        stock(Rejected, Some(ORDER_C), &[(PEAR, 99)], 7),
    ]
    .into_iter()
    .map(enveloped)
    .collect()
}

/// `events` shuffled by `seed`, except that the events of one order keep their order (they
/// share a partition, as every event with the same key does).
fn interleaving(events: &[(Event, Envelope)], seed: u64) -> Vec<(Event, Envelope)> {
    let mut state = seed;
    let mut next = || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..events.len()).collect();
    for i in (1..order.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    // Each order's events back into their original order, in the slots they landed in.
    let key = |i: usize| match &events[i].0 {
        Event::InventoryUpdated(u) if u.change.concerns_an_order() => u.order_id,
        _ => None,
    };
    let mut by_key: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for &i in &order {
        if let Some(key) = key(i) {
            by_key.entry(key).or_default().push(i);
        }
    }
    for slots in by_key.values_mut() {
        slots.sort_unstable();
        slots.reverse();
    }
    let order: Vec<usize> = order
        .into_iter()
        .map(|i| match key(i) {
            Some(key) => by_key.get_mut(&key).and_then(Vec::pop).unwrap_or(i),
            None => i,
        })
        .collect();
    order.into_iter().map(|i| events[i].clone()).collect()
}

#[test]
fn a_created_product_has_its_sku_name_and_price_and_nothing_in_stock() {
    // given nothing, when product.created arrives
    let products = apply(&[enveloped(created(APPLE, "APL", 120, 0))]);
    // then the product is listed at its price with empty stock
    let apple = &products[&APPLE];
    assert!(apple.is_listed());
    let listing = apple.listing.as_ref().unwrap();
    assert_eq!(
        (listing.sku.as_str(), listing.name.as_str()),
        ("APL", "APL (name)")
    );
    assert_eq!(apple.price.map(|p| p.money), Some(eur(120)));
    assert_eq!(apple.counts, Counts::default());
    assert_eq!(apple.updated_at, at(0));
}

#[test]
fn the_latest_price_wins_whatever_order_the_changes_arrive_in() {
    let events = [
        enveloped(created(APPLE, "APL", 120, 0)),
        enveloped(repriced(APPLE, 150, 5)),
        enveloped(repriced(APPLE, 140, 3)),
    ];
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0]] {
        let arrival: Vec<_> = order.iter().map(|&i| events[i].clone()).collect();
        let apple = &apply(&arrival)[&APPLE];
        assert_eq!(apple.price.map(|p| p.money), Some(eur(150)), "{order:?}");
        assert_eq!(apple.updated_at, at(5));
    }
}

#[test]
fn a_price_changed_in_the_same_instant_is_settled_by_event_id() {
    let first = enveloped(repriced(APPLE, 100, 1));
    let second = enveloped(repriced(APPLE, 200, 1));
    let winner = if first.1.event_id > second.1.event_id {
        100
    } else {
        200
    };
    for arrival in [
        [first.clone(), second.clone()],
        [second.clone(), first.clone()],
    ] {
        let apple = &apply(&arrival)[&APPLE];
        assert_eq!(apple.price.map(|p| p.money), Some(eur(winner)));
    }
}

#[test]
fn stock_that_arrives_before_its_product_is_kept_without_catalog_fields() {
    // given a restock of a product the catalog has not announced yet
    let restock = enveloped(stock(InventoryChange::Restocked, None, &[(APPLE, 3)], 2));
    let products = apply(std::slice::from_ref(&restock));
    // then the product has its figures and no name, SKU or price, and is not listed
    let apple = &products[&APPLE];
    assert!(!apple.is_listed());
    assert_eq!(apple.price, None);
    assert_eq!(apple.counts.available, 3);
    // when product.created follows, then it fills them in
    let products = apply(&[restock, enveloped(created(APPLE, "APL", 120, 0))]);
    let apple = &products[&APPLE];
    assert!(apple.is_listed());
    assert_eq!(apple.counts.received, 3);
    assert_eq!(apple.updated_at, at(2));
}

#[test]
fn the_figures_add_up_and_match_what_the_inventory_holds() {
    let products = apply(&history());
    let (apple, pear) = (&products[&APPLE], &products[&PEAR]);
    // Apple: 10 received, 1 taken away, 2 sold, 3 reserved then released.
    let expected = Counts {
        received: 9,
        available: 7,
        reserved: 0,
        sold: 2,
    };
    assert_eq!(apple.counts, expected);
    assert_eq!(apple.price.map(|p| p.money), Some(eur(150)));
    assert_eq!(apple.updated_at, at(9));
    // Pear: 4 received, 1 sold; the rejected order moved nothing.
    let expected = Counts {
        received: 4,
        available: 3,
        reserved: 0,
        sold: 1,
    };
    assert_eq!(pear.counts, expected);
    assert_eq!(pear.updated_at, at(8));
    assert!(products.values().all(|p| p.counts.adds_up()));
}

#[test]
fn the_view_ends_the_same_whatever_the_arrival_order() {
    let history = history();
    let expected = apply(&history);
    for seed in 0..500 {
        let arrival = interleaving(&history, seed);
        let kinds: Vec<_> = arrival.iter().map(|(e, _)| e.event_type()).collect();
        assert_eq!(apply(&arrival), expected, "seed {seed}: {kinds:?}");
    }
}

#[test]
fn a_redelivered_event_changes_nothing() {
    let history = history();
    let mut twice = history.clone();
    twice.extend(history.iter().cloned());
    assert_eq!(apply(&twice), apply(&history));
}

#[test]
fn a_later_product_created_renames_the_product_and_an_earlier_one_does_not() {
    let first = enveloped(created(APPLE, "APL", 120, 0));
    let later = enveloped(created(APPLE, "APL-2", 130, 4));
    for arrival in [
        [first.clone(), later.clone()],
        [later.clone(), first.clone()],
    ] {
        let apple = &apply(&arrival)[&APPLE];
        assert_eq!(
            apple.listing.as_ref().map(|l| l.sku.as_str()),
            Some("APL-2")
        );
        assert_eq!(apple.price.map(|p| p.money), Some(eur(130)));
    }
}

#[test]
fn events_about_no_product_change_nothing() {
    let registered: Event = UserRegistered {
        user_id: Uuid::from_u128(9),
        email: "ada@example.com".into(),
        name: "Ada".into(),
        registered_at: at(0),
    }
    .into();
    assert_eq!(apply(&[enveloped(registered)]), BTreeMap::new());
    let rejected = stock(InventoryChange::Rejected, Some(ORDER_C), &[(PEAR, 1)], 0);
    assert_eq!(apply(&[enveloped(rejected)]), BTreeMap::new());
}

#[test]
fn in_stock_means_at_least_one_unit_available() {
    let with = |available: i64| Counts {
        received: available.max(0),
        available,
        reserved: 0,
        sold: 0,
    };
    assert!(Stocked::InStock.fits(&with(1)));
    assert!(!Stocked::InStock.fits(&with(0)));
    assert!(Stocked::OutOfStock.fits(&with(0)));
    assert!(Stocked::OutOfStock.fits(&with(-1)));
    for stocked in Stocked::ALL {
        assert_eq!(Stocked::parse(stocked.as_str()), Ok(stocked));
    }
    assert!(Stocked::parse("IN_STOCK").is_err());
    assert!(Stocked::parse("").is_err());
}
