//! Every rule of the payment, given what happened, when a command is decided.

use chrono::{DateTime, Utc};
use eventmart_events::inventory::{InventoryChange, InventoryUpdated, StockLine};
use eventmart_events::orders::{CancellationReason, OrderCancelled, OrderCreated, OrderLine};
use eventmart_events::payments::{PaymentCompleted, PaymentFailed, PaymentRefunded};
use eventmart_events::{Currency, Event, Money};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::testing::Scenario;
use uuid::Uuid;

use super::*;
use crate::domain::provider::DECLINED_TOKEN;

const LIMIT: i64 = 10_000;
const TOTAL: i64 = 4_000;

fn payments() -> Payments {
    Payments::new(Provider::new(LIMIT))
}

fn at() -> DateTime<Utc> {
    eventmart_events::timestamp::from_millis(1_714_564_800_123).unwrap()
}

fn order_id() -> Uuid {
    Uuid::from_u128(0x0190_c2a8_7a8e_7cc4_9f3c_0000_0000_0001)
}

fn user_id() -> Uuid {
    Uuid::from_u128(0x0190_c2a8_7a8e_7cc4_9f3c_0000_0000_0002)
}

fn eur(cents: i64) -> Money {
    Money::new(cents, Currency::EUR)
}

fn created_with(token: Option<&str>) -> Event {
    OrderCreated {
        order_id: order_id(),
        user_id: user_id(),
        lines: vec![OrderLine {
            product_id: Uuid::from_u128(3),
            quantity: 2,
            unit_price: eur(TOTAL / 2),
        }],
        total: eur(TOTAL),
        payment_token: token.map(str::to_owned),
        created_at: at(),
    }
    .into()
}

fn created() -> Event {
    created_with(Some("tok_visa"))
}

fn reserved() -> Event {
    InventoryUpdated {
        change: InventoryChange::Reserved,
        order_id: Some(order_id()),
        lines: vec![StockLine {
            product_id: Uuid::from_u128(3),
            quantity: 2,
        }],
        reason: None,
        updated_at: at(),
    }
    .into()
}

fn cancelled() -> Event {
    OrderCancelled {
        order_id: order_id(),
        reason: CancellationReason::Timeout,
        detail: None,
        cancelled_at: at(),
    }
    .into()
}

fn completed() -> Event {
    PaymentCompleted {
        payment_id: payment_id(order_id()),
        order_id: order_id(),
        user_id: user_id(),
        amount: eur(TOTAL),
        completed_at: at(),
    }
    .into()
}

fn failed(reason: &str) -> Event {
    PaymentFailed {
        payment_id: payment_id(order_id()),
        order_id: order_id(),
        user_id: user_id(),
        amount: eur(TOTAL),
        reason: reason.to_owned(),
        failed_at: at(),
    }
    .into()
}

fn refunded(reason: &str) -> Event {
    PaymentRefunded {
        payment_id: payment_id(order_id()),
        order_id: order_id(),
        amount: eur(TOTAL),
        reason: reason.to_owned(),
        refunded_at: at(),
    }
    .into()
}

fn charge(outstanding_cents: i64) -> Command {
    Command::Charge {
        outstanding_cents,
        at: at(),
    }
}

fn refund(reason: &str) -> Command {
    Command::Refund {
        reason: RefundReason::parse(reason).unwrap(),
        at: at(),
    }
}

fn status_after(events: &[Event]) -> Status {
    payments().replay(events).status
}

#[test]
fn the_charge_starts_only_once_both_the_order_and_its_reservation_are_known() {
    assert_eq!(status_after(&[created()]), Status::None);
    assert_eq!(status_after(&[reserved()]), Status::None);
    assert_eq!(status_after(&[created(), reserved()]), Status::Charging);
}

#[test]
fn the_charge_starts_whichever_fact_arrives_first() {
    assert_eq!(status_after(&[reserved(), created()]), Status::Charging);
}

#[test]
fn no_charge_is_made_before_both_facts_are_known() {
    Scenario::with(payments())
        .given([created()])
        .when(charge(0))
        .then_expect_error(PaymentError::NotCharging {
            status: Status::None,
        });
    Scenario::with(payments())
        .given([reserved()])
        .when(charge(0))
        .then_expect_error(PaymentError::NotCharging {
            status: Status::None,
        });
}

#[test]
fn a_charge_in_flight_completes_for_the_orders_total() {
    Scenario::with(payments())
        .given([reserved(), created()])
        .when(charge(0))
        .then_expect_events([completed()]);
}

#[test]
fn the_decline_token_fails_with_card_declined() {
    Scenario::with(payments())
        .given([created_with(Some(DECLINED_TOKEN)), reserved()])
        .when(charge(0))
        .then_expect_events([failed("card_declined")]);
}

#[test]
fn a_charge_above_the_credit_limit_fails_with_insufficient_funds() {
    Scenario::with(payments())
        .given([created(), reserved()])
        .when(charge(LIMIT - TOTAL + 1))
        .then_expect_events([failed("insufficient_funds")]);
}

#[test]
fn a_charge_that_reaches_the_credit_limit_exactly_completes() {
    Scenario::with(payments())
        .given([created_with(None), reserved()])
        .when(charge(LIMIT - TOTAL))
        .then_expect_events([completed()]);
}

#[test]
fn an_order_cancelled_before_its_charge_started_is_never_charged() {
    assert_eq!(
        status_after(&[created(), cancelled(), reserved()]),
        Status::None
    );
    Scenario::with(payments())
        .given([created(), cancelled(), reserved()])
        .when(charge(0))
        .then_expect_error(PaymentError::NotCharging {
            status: Status::None,
        });
}

#[test]
fn cancelling_a_completed_payment_refunds_it() {
    Scenario::with(payments())
        .given([created(), reserved(), completed()])
        .when(Command::Cancel { at: at() })
        .then_expect_events([refunded(REFUND_ORDER_CANCELLED)]);
}

#[test]
fn cancelling_while_the_charge_is_in_flight_refunds_nothing_yet() {
    Scenario::with(payments())
        .given([created(), reserved()])
        .when(Command::Cancel { at: at() })
        .then_expect_events([]);
}

#[test]
fn a_charge_that_completes_after_the_cancellation_is_refunded_in_the_same_step() {
    Scenario::with(payments())
        .given([created(), reserved(), cancelled()])
        .when(charge(0))
        .then_expect_events([completed(), refunded(REFUND_ORDER_CANCELLED)]);
}

#[test]
fn a_charge_declined_after_the_cancellation_refunds_nothing() {
    Scenario::with(payments())
        .given([created_with(Some(DECLINED_TOKEN)), reserved(), cancelled()])
        .when(charge(0))
        .then_expect_events([failed("card_declined")]);
}

#[test]
fn cancelling_an_unpaid_or_refunded_payment_refunds_nothing() {
    for given in [
        vec![created()],
        vec![created(), reserved(), failed("card_declined")],
        vec![created(), reserved(), completed(), refunded("goodwill")],
    ] {
        Scenario::with(payments())
            .given(given)
            .when(Command::Cancel { at: at() })
            .then_expect_events([]);
    }
}

#[test]
fn a_payment_is_never_charged_twice() {
    Scenario::with(payments())
        .given([created(), reserved(), completed()])
        .when(charge(0))
        .then_expect_error(PaymentError::NotCharging {
            status: Status::Completed,
        });
    Scenario::with(payments())
        .given([created(), reserved(), failed("card_declined")])
        .when(charge(0))
        .then_expect_error(PaymentError::NotCharging {
            status: Status::Failed,
        });
}

#[test]
fn a_second_order_or_reservation_does_not_start_another_charge() {
    let events = [created(), reserved(), completed(), created(), reserved()];
    let state = payments().replay(&events);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.charges, 1);
}

#[test]
fn a_completed_payment_is_refunded_by_hand_with_the_given_reason() {
    Scenario::with(payments())
        .given([created(), reserved(), completed()])
        .when(refund("goodwill"))
        .then_expect_events([refunded("goodwill")]);
}

#[test]
fn only_a_completed_payment_is_refunded_by_hand() {
    let cases = [
        (vec![], Status::None),
        (vec![created(), reserved()], Status::Charging),
        (
            vec![created(), reserved(), failed("card_declined")],
            Status::Failed,
        ),
        (
            vec![created(), reserved(), completed(), refunded("goodwill")],
            Status::Refunded,
        ),
    ];
    for (given, status) in cases {
        Scenario::with(payments())
            .given(given)
            .when(refund("goodwill"))
            .then_expect_error(PaymentError::NotRefundable { status });
    }
}

#[test]
fn payments_made_elsewhere_are_recorded_as_they_are() {
    let state = payments().replay(&[completed(), completed()]);
    assert_eq!(state.status, Status::Completed);
    assert_eq!(state.charges, 2);
    assert_eq!(state.user_id, Some(user_id()));
    let state = payments().replay(&[completed(), refunded("goodwill")]);
    assert_eq!(state.status, Status::Refunded);
    assert_eq!(state.reason.as_deref(), Some("goodwill"));
}

#[test]
fn a_refund_reason_is_non_empty_text_of_at_most_200_characters() {
    assert!(RefundReason::parse("").is_err());
    assert!(RefundReason::parse("   ").is_err());
    assert!(RefundReason::parse(&"é".repeat(200)).is_ok());
    assert!(RefundReason::parse(&"x".repeat(201)).is_err());
}
