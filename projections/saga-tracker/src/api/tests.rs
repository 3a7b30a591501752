//! The API served on a free port over a real database that the projector writes at the same
//! time, event by event as the consumer does: what a client reads while sagas move on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{OrderConfirmed, OrderCreated, OrderLine};
use eventmart_events::payments::PaymentCompleted;
use eventmart_events::{Currency, Decoded, Envelope, Event, Format, Money};
use eventmart_runtime::db::Engine;
use eventmart_runtime::on_both_engines;
use eventmart_runtime::testing::{Reads, ServedQueries, apply_in_order};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use super::{App, router};
use crate::ReadModel;
use crate::projector::Projector;

/// The query API on a free port over a fresh database (see [`ServedQueries`]).
async fn serve(engine: Engine) -> anyhow::Result<ServedQueries> {
    let wait_max = Duration::from_secs(5);
    ServedQueries::start::<ReadModel>(engine, |live| router(App { live, wait_max })).await
}

/// Applies `events` in order, each in its own transaction.
async fn apply(served: &ServedQueries, events: &[&Decoded]) -> anyhow::Result<()> {
    let projector = Projector {
        engine: served.writer.engine,
    };
    apply_in_order(&projector, &served.writer, events, "orders").await
}
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

/// `event`, starting a saga if `cause` is `None`, else a step of `cause`'s saga.
fn decoded(event: impl Into<Event>, cause: Option<&Decoded>) -> Decoded {
    let event = event.into();
    let envelope = Envelope::new(&event);
    Decoded {
        envelope: match cause {
            Some(cause) => envelope.caused_by(&cause.envelope),
            None => envelope,
        },
        event,
        format: Format::Json,
    }
}

const PRODUCT: Uuid = Uuid::from_u128(3);

/// The `order.created` that starts a saga of a new order, at `seconds`.
fn started(seconds: i64) -> Decoded {
    let amount = Money::new(700, Currency::EUR);
    let created = OrderCreated {
        order_id: Uuid::now_v7(),
        user_id: Uuid::from_u128(2),
        lines: vec![OrderLine {
            product_id: PRODUCT,
            quantity: 1,
            unit_price: amount,
        }],
        total: amount,
        payment_token: None,
        created_at: at(seconds),
    };
    decoded(created, None)
}

fn order_of(start: &Decoded) -> Uuid {
    match &start.event {
        Event::OrderCreated(created) => created.order_id,
        _ => Uuid::nil(),
    }
}

/// A reservation for the saga `start` began, at `seconds`: the saga runs on, waiting for
/// payments, with a later last event.
fn reserved(start: &Decoded, seconds: i64) -> Decoded {
    let reserved = InventoryUpdated {
        change: InventoryChange::Reserved,
        order_id: Some(order_of(start)),
        lines: vec![StockLine {
            product_id: PRODUCT,
            quantity: 1,
        }],
        reason: None,
        updated_at: at(seconds),
    };
    decoded(reserved, Some(start))
}

/// The `correlation_id`s of a page's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["correlation_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn a_walk_lists_every_saga_once_however_their_steps_move_them(
    engine: Engine,
) -> anyhow::Result<()> {
    let served = serve(engine).await?;
    // Ten sagas, started a minute apart.
    let mut sagas: HashMap<String, Decoded> = HashMap::new();
    let mut at_start = Vec::new();
    for minute in 0..10 {
        let start = started(minute * 60);
        apply(&served, &[&start]).await?;
        at_start.push(start.envelope.correlation_id.to_string());
        sagas.insert(start.envelope.correlation_id.to_string(), start);
    }
    // Each step comes later than any before it.
    let mut clock = 10_000;
    for query in ["", "&state=running"] {
        let mut seen: Vec<String> = Vec::new();
        let mut path = format!("/sagas?limit=3{query}");
        loop {
            let page = served.ok(&path).await?;
            let listed = ids(&page);
            seen.extend(listed.iter().cloned());
            // Between two pages, the first saga just listed and a saga not listed yet each
            // get a step (the latest of all), and a new saga starts.
            let unlisted = at_start.iter().find(|id| !seen.contains(id));
            for id in [listed.first(), unlisted].into_iter().flatten() {
                clock += 1;
                let step = reserved(&sagas[id], clock);
                apply(&served, &[&step]).await?;
            }
            clock += 1;
            let start = started(clock);
            apply(&served, &[&start]).await?;
            sagas.insert(start.envelope.correlation_id.to_string(), start);
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/sagas?limit=3{query}&cursor={cursor}"),
                None => break,
            }
        }
        for id in &at_start {
            let times = seen.iter().filter(|s| *s == id).count();
            assert_eq!(times, 1, "{query}: {id} listed {times} times in {seen:#?}");
        }
        let mut distinct = seen.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), seen.len(), "{query}: {seen:#?}");
    }
    Ok(())
}

on_both_engines!(a_walk_lists_every_saga_once_however_their_steps_move_them);

async fn the_longest_quiet_first_is_one_page_that_says_what_it_leaves_out(
    engine: Engine,
) -> anyhow::Result<()> {
    let served = serve(engine).await?;
    // Four sagas, started in this order; the first moves on last.
    let starts: Vec<Decoded> = (0..4).map(|minute| started(minute * 60)).collect();
    for start in &starts {
        apply(&served, &[start]).await?;
    }
    apply(&served, &[&reserved(&starts[0], 1_000)]).await?;
    let id = |i: usize| starts[i].envelope.correlation_id.to_string();

    let quiet = served.ok("/sagas?sort=quiet&limit=3").await?;
    assert_eq!(ids(&quiet), [id(1), id(2), id(3)]);
    assert_eq!(
        (&quiet["next_cursor"], &quiet["truncated"]),
        (&Value::Null, &Value::Bool(true))
    );
    let all = served.ok("/sagas?sort=quiet").await?;
    assert_eq!(ids(&all), [id(1), id(2), id(3), id(0)]);
    assert_eq!(all["truncated"], false);

    // The default walks by start, and only a walk takes a cursor.
    let walk = served.ok("/sagas?limit=3").await?;
    assert_eq!(ids(&walk), [id(0), id(1), id(2)]);
    assert_eq!(walk["truncated"], true);
    let cursor = walk["next_cursor"].as_str().unwrap_or_default().to_owned();
    let rest = served
        .ok(&format!("/sagas?limit=3&cursor={cursor}"))
        .await?;
    assert_eq!(ids(&rest), [id(3)]);
    assert_eq!(
        (&rest["next_cursor"], &rest["truncated"]),
        (&Value::Null, &Value::Bool(false))
    );
    for (path, field) in [
        (format!("/sagas?sort=quiet&cursor={cursor}"), "cursor"),
        ("/sagas?sort=oldest".to_owned(), "sort"),
    ] {
        let (status, body) = served.get(&path).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
    }
    Ok(())
}

on_both_engines!(the_longest_quiet_first_is_one_page_that_says_what_it_leaves_out);

/// A saga's whole life, each event caused by the one before, a second apart from `seconds`.
fn confirmed_saga(seconds: i64) -> Vec<Decoded> {
    let start = started(seconds);
    let order_id = order_of(&start);
    let reserved = reserved(&start, seconds + 1);
    let payment_id = Uuid::now_v7();
    let paid = decoded(
        PaymentCompleted {
            payment_id,
            order_id,
            user_id: Uuid::from_u128(2),
            amount: Money::new(700, Currency::EUR),
            completed_at: at(seconds + 2),
        },
        Some(&reserved),
    );
    let confirmed = decoded(
        OrderConfirmed {
            order_id,
            payment_id,
            confirmed_at: at(seconds + 3),
        },
        Some(&paid),
    );
    vec![start, reserved, paid, confirmed]
}

/// How `saga`, as `GET /sagas/{id}` answers it, disagrees with its own steps, if it does. The
/// projector recomputes a saga in the transaction that adds its step, so an answer read from
/// one snapshot counts exactly the steps it shows and ends with the last of them.
fn disagreement(saga: &Value) -> Option<String> {
    let steps = saga["steps"].as_array().cloned().unwrap_or_default();
    let last = steps.last().cloned().unwrap_or_default();
    let agrees = saga["step_count"].as_u64() == Some(steps.len() as u64)
        && saga["step"] == last["step"]
        && saga["last_event_at"] == last["occurred_at"];
    (!agrees).then(|| {
        format!(
            "{} steps counted, {} shown; step {} after {}",
            saga["step_count"],
            steps.len(),
            saga["step"],
            last["step"]
        )
    })
}

/// Sagas a client reads while they are applied.
const SAGAS: usize = 30;

/// Readers reading at once.
const READERS: usize = 3;

async fn a_saga_read_while_its_steps_are_applied_always_counts_the_steps_it_shows(
    engine: Engine,
) -> anyhow::Result<()> {
    let served = serve(engine).await?;
    let sagas: Vec<Vec<Decoded>> = (0..SAGAS).map(|i| confirmed_saga(i as i64 * 60)).collect();
    let ids: Arc<Vec<Uuid>> =
        Arc::new(sagas.iter().map(|s| s[0].envelope.correlation_id).collect());
    let read = Arc::clone(&ids);
    let Reads { answers, wrong } = served
        .read_while_writing(
            SAGAS,
            READERS,
            move |i| format!("/sagas/{}", read[i]),
            disagreement,
            |i| {
                let events: Vec<&Decoded> = sagas[i].iter().collect();
                let served = &served;
                async move { apply(served, &events).await }
            },
        )
        .await?;
    assert!(
        wrong.is_empty(),
        "{} of {answers} answers disagree with their steps, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );
    assert!(answers >= SAGAS, "only {answers} answers read");
    for id in ids.iter() {
        let saga = served.ok(&format!("/sagas/{id}")).await?;
        assert_eq!(
            (&saga["state"], &saga["step_count"]),
            (&Value::from("confirmed"), &Value::from(4))
        );
    }
    Ok(())
}

on_both_engines!(a_saga_read_while_its_steps_are_applied_always_counts_the_steps_it_shows);
