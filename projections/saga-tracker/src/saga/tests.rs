//! The saga rules, event by event, and that they do not depend on arrival order.

use chrono::TimeZone;
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::OrderLine;
use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated};
use eventmart_events::payments::{PaymentCompleted, PaymentFailed, PaymentRefunded};
use eventmart_events::users::UserRegistered;
use eventmart_events::{Currency, Money};

use super::*;

const ORDER: Uuid = Uuid::from_u128(1);
const USER: Uuid = Uuid::from_u128(2);
const PRODUCT: Uuid = Uuid::from_u128(3);
const PAYMENT: Uuid = Uuid::from_u128(4);

/// `seconds` after a fixed instant.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn created(seconds: i64) -> Event {
    OrderCreated {
        order_id: ORDER,
        user_id: USER,
        lines: vec![OrderLine {
            product_id: PRODUCT,
            quantity: 2,
            unit_price: Money::new(1250, Currency::EUR),
        }],
        total: Money::new(2500, Currency::EUR),
        payment_token: None,
        created_at: at(seconds),
    }
    .into()
}

fn stock(change: InventoryChange, seconds: i64) -> Event {
    InventoryUpdated {
        change,
        order_id: Some(ORDER),
        lines: vec![StockLine {
            product_id: PRODUCT,
            quantity: 2,
        }],
        reason: None,
        updated_at: at(seconds),
    }
    .into()
}

fn paid(seconds: i64) -> Event {
    PaymentCompleted {
        payment_id: PAYMENT,
        order_id: ORDER,
        user_id: USER,
        amount: Money::new(2500, Currency::EUR),
        completed_at: at(seconds),
    }
    .into()
}

fn declined(seconds: i64) -> Event {
    PaymentFailed {
        payment_id: PAYMENT,
        order_id: ORDER,
        user_id: USER,
        amount: Money::new(2500, Currency::EUR),
        reason: "card_declined".into(),
        failed_at: at(seconds),
    }
    .into()
}

fn refunded(seconds: i64) -> Event {
    PaymentRefunded {
        payment_id: PAYMENT,
        order_id: ORDER,
        amount: Money::new(2500, Currency::EUR),
        reason: "order_cancelled".into(),
        refunded_at: at(seconds),
    }
    .into()
}

fn confirmed(seconds: i64) -> Event {
    OrderConfirmed {
        order_id: ORDER,
        payment_id: PAYMENT,
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

/// The correlation id of a saga whose first event is not its `order.created`.
const SAGA: Uuid = Uuid::from_u128(99);

/// `events` as one saga: the first starts it (an `order.created` with its own id as the
/// correlation id, another event with [`SAGA`]), each later one is caused by the one before.
fn flow(events: Vec<Event>) -> Vec<SagaStep> {
    let mut steps: Vec<SagaStep> = Vec::new();
    let mut cause: Option<Envelope> = None;
    for event in events {
        let mut envelope = Envelope::new(&event);
        match &cause {
            Some(cause) => envelope = envelope.caused_by(cause),
            None if !matches!(event, Event::OrderCreated(_)) => envelope.correlation_id = SAGA,
            None => {}
        }
        steps.extend(step_of(&event, &envelope));
        cause = Some(envelope);
    }
    steps
}

/// The saga `steps` make up.
fn saga(steps: &[SagaStep]) -> Saga {
    let correlation_id = steps[0].correlation_id;
    Saga::of(correlation_id, steps).expect("a saga with steps")
}

/// Where the saga made of `events` stands, and whom it waits for.
fn standing_after(events: Vec<Event>) -> (State, Option<Service>) {
    let saga = saga(&flow(events));
    (saga.state, saga.waiting_for)
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
fn a_placed_order_starts_a_running_saga_that_waits_for_inventory() {
    // given nothing, when order.created arrives
    let steps = flow(vec![created(0)]);
    // then its saga runs under its own event id, waiting for a reservation
    let saga = saga(&steps);
    assert_eq!(saga.correlation_id, steps[0].event_id);
    assert_eq!(saga.order_id, ORDER);
    assert_eq!(
        (saga.state, saga.step, saga.waiting_for),
        (State::Running, Step::Created, Some(Service::Inventory))
    );
    assert_eq!((saga.started_at, saga.last_event_at), (at(0), at(0)));
    assert_eq!(saga.step_count, 1);
    assert_eq!(steps[0].service(), Service::Orders);
    assert_eq!(steps[0].event_type, "order.created");
    assert_eq!(steps[0].causation_id, None);
}

#[test]
fn a_reservation_hands_the_saga_to_payments_and_a_payment_outcome_to_orders() {
    let reserved = || stock(InventoryChange::Reserved, 1);
    assert_eq!(
        standing_after(vec![created(0), reserved()]),
        (State::Running, Some(Service::Payments))
    );
    assert_eq!(
        standing_after(vec![created(0), reserved(), paid(2)]),
        (State::Running, Some(Service::Orders))
    );
    assert_eq!(
        standing_after(vec![created(0), reserved(), declined(2)]),
        (State::Running, Some(Service::Orders))
    );
}

#[test]
fn a_rejected_reservation_waits_for_orders_to_cancel_and_then_the_saga_is_done() {
    let rejected = || stock(InventoryChange::Rejected, 1);
    assert_eq!(
        standing_after(vec![created(0), rejected()]),
        (State::Running, Some(Service::Orders))
    );
    assert_eq!(
        standing_after(vec![created(0), rejected(), cancelled(2)]),
        (State::Cancelled, None)
    );
}

#[test]
fn a_confirmed_saga_waits_for_inventory_to_sell_and_then_is_done() {
    let paid_for = || {
        vec![
            created(0),
            stock(InventoryChange::Reserved, 1),
            paid(2),
            confirmed(3),
        ]
    };
    assert_eq!(
        standing_after(paid_for()),
        (State::Confirmed, Some(Service::Inventory))
    );
    let mut sold = paid_for();
    sold.push(stock(InventoryChange::Sold, 4));
    let done = saga(&flow(sold));
    assert_eq!(
        (done.state, done.waiting_for, done.step, done.step_count),
        (State::Confirmed, None, Step::Sold, 5)
    );
}

#[test]
fn a_cancelled_saga_compensates_until_its_reservation_is_released() {
    // given a reserved order cancelled at its deadline
    let timed_out = || {
        vec![
            created(0),
            stock(InventoryChange::Reserved, 1),
            cancelled(30),
        ]
    };
    // then it waits for inventory to give the stock back
    assert_eq!(
        standing_after(timed_out()),
        (State::Compensating, Some(Service::Inventory))
    );
    // when inventory releases it, then the saga is cancelled and done
    let mut released = timed_out();
    released.push(stock(InventoryChange::Released, 31));
    assert_eq!(standing_after(released), (State::Cancelled, None));
}

#[test]
fn a_charge_that_completes_after_the_cancellation_is_compensated_by_a_refund() {
    let late_charge = || {
        vec![
            created(0),
            stock(InventoryChange::Reserved, 1),
            cancelled(30),
            stock(InventoryChange::Released, 31),
            paid(32),
        ]
    };
    assert_eq!(
        standing_after(late_charge()),
        (State::Compensating, Some(Service::Payments))
    );
    let mut refunded_too = late_charge();
    refunded_too.push(refunded(32));
    assert_eq!(standing_after(refunded_too), (State::Cancelled, None));

    // given a charge and a reservation both outstanding, then inventory is named first
    assert_eq!(
        standing_after(vec![
            created(0),
            stock(InventoryChange::Reserved, 1),
            cancelled(30),
            paid(32),
        ]),
        (State::Compensating, Some(Service::Inventory))
    );
}

#[test]
fn a_cancelled_order_that_inventory_has_not_answered_yet_is_still_compensating() {
    // given an order cancelled before inventory answered it (inventory was down)
    assert_eq!(
        standing_after(vec![created(0), cancelled(30)]),
        (State::Compensating, Some(Service::Inventory))
    );
    // when inventory rejects it, then nothing was held and the saga is done
    assert_eq!(
        standing_after(vec![
            created(0),
            cancelled(30),
            stock(InventoryChange::Rejected, 40)
        ]),
        (State::Cancelled, None)
    );
    // a cancellation whose order.created the tracker never saw owes nothing known
    assert_eq!(
        standing_after(vec![cancelled(30)]),
        (State::Cancelled, None)
    );
}

#[test]
fn a_refund_of_a_confirmed_orders_charge_leaves_it_confirmed() {
    assert_eq!(
        standing_after(vec![
            created(0),
            stock(InventoryChange::Reserved, 1),
            paid(2),
            confirmed(3),
            stock(InventoryChange::Sold, 4),
            refunded(50),
        ]),
        (State::Confirmed, None)
    );
}

#[test]
fn steps_that_arrive_before_their_cause_leave_the_saga_waiting_for_orders() {
    assert_eq!(
        standing_after(vec![stock(InventoryChange::Sold, 4)]),
        (State::Running, Some(Service::Orders))
    );
}

#[test]
fn the_earliest_decision_counts_when_an_order_has_two() {
    let base = || vec![created(0), stock(InventoryChange::Reserved, 1), paid(2)];
    let mut confirmed_first = base();
    confirmed_first.extend([confirmed(3), cancelled(4)]);
    assert_eq!(
        standing_after(confirmed_first).0,
        State::Confirmed,
        "confirmed first"
    );
    let mut cancelled_first = base();
    cancelled_first.extend([cancelled(3), confirmed(4)]);
    assert_eq!(standing_after(cancelled_first).0, State::Compensating);
}

#[test]
fn an_event_that_states_no_correlation_joins_the_saga_of_its_order() {
    // given a payment typed in without a correlation id (the codec gives it its own id)
    let event = paid(2);
    let envelope = Envelope::new(&event);
    let step = step_of(&event, &envelope).unwrap();
    // then its saga is its order's
    assert_eq!(step.correlation_id, ORDER);
    // while an order.created with its own id as correlation starts a saga of its own
    let event = created(0);
    let envelope = Envelope::new(&event);
    assert_eq!(
        step_of(&event, &envelope).unwrap().correlation_id,
        envelope.event_id
    );
    // and an event caused by it joins that saga, naming its cause
    let effect = stock(InventoryChange::Reserved, 1);
    let effect_envelope = Envelope::new(&effect).caused_by(&envelope);
    let step = step_of(&effect, &effect_envelope).unwrap();
    assert_eq!(
        (step.correlation_id, step.causation_id),
        (envelope.event_id, Some(envelope.event_id))
    );
    assert_eq!(
        (step.step, step.service()),
        (Step::Reserved, Service::Inventory)
    );
}

#[test]
fn events_about_no_order_are_no_steps() {
    let restocked: Event = InventoryUpdated {
        change: InventoryChange::Restocked,
        order_id: None,
        lines: vec![StockLine {
            product_id: PRODUCT,
            quantity: 5,
        }],
        reason: None,
        updated_at: at(0),
    }
    .into();
    let registered: Event = UserRegistered {
        user_id: USER,
        email: "ada@example.com".into(),
        name: "Ada".into(),
        registered_at: at(0),
    }
    .into();
    let mut unnamed = stock(InventoryChange::Reserved, 1);
    if let Event::InventoryUpdated(e) = &mut unnamed {
        e.order_id = None;
    }
    for event in [restocked, registered, unnamed] {
        let envelope = Envelope::new(&event);
        assert_eq!(step_of(&event, &envelope), None, "{event:?}");
    }
}

#[test]
fn the_saga_is_the_same_whatever_order_its_steps_arrive_in() {
    let sagas = [
        flow(vec![
            created(0),
            stock(InventoryChange::Reserved, 1),
            paid(2),
            confirmed(3),
            stock(InventoryChange::Sold, 4),
        ]),
        flow(vec![
            created(0),
            stock(InventoryChange::Reserved, 1),
            cancelled(3),
            paid(3),
            refunded(3),
        ]),
    ];
    for steps in sagas {
        let expected = saga(&steps);
        for order in permutations(&steps) {
            let kinds: Vec<_> = order.iter().map(|s| s.step).collect();
            assert_eq!(saga(&order), expected, "arrival order {kinds:?}");
        }
    }
}

#[test]
fn the_latest_step_is_the_latest_by_time_then_event_id() {
    // given three events in the same millisecond
    let steps = flow(vec![cancelled(3), paid(3), refunded(3)]);
    let latest = steps.iter().max_by_key(|s| s.event_id).unwrap();
    let saga = saga(&steps);
    assert_eq!(saga.step, latest.step);
    assert_eq!((saga.started_at, saga.last_event_at), (at(3), at(3)));
}
