//! The order aggregate: an order is placed PENDING and ends CONFIRMED (paid) or CANCELLED
//! (out of stock, payment declined, past its deadline, or by the customer).
//!
//! [`OrderDecider::decide`] holds every rule; [`OrderDecider::evolve`] only records what the
//! `order.*` events say, so that events produced elsewhere (kcat) fold in the same way. The
//! state is `Option<Order>`: `None` until the order is created.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use eventmart_events::orders::{
    CancellationReason, OrderCancelled, OrderConfirmed, OrderCreated, OrderLine,
};
use eventmart_events::{Event, Money};
use eventmart_runtime::decider::Decider;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::request::OrderRequest;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed; waiting for stock and payment.
    Pending,
    /// Paid for; final.
    Confirmed,
    /// Will not be fulfilled; final.
    Cancelled,
}

/// An order as its events describe it. Serialized as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id.
    pub order_id: Uuid,
    /// The customer.
    pub user_id: Uuid,
    /// What was ordered, with the unit prices of when it was placed.
    pub lines: Vec<OrderLine>,
    /// The sum of quantity × unit price over the lines.
    pub total: Money,
    /// Where it stands.
    pub status: OrderStatus,
    /// Why it was cancelled, once it is.
    pub reason: Option<CancellationReason>,
    /// The payment that confirmed it, once it is.
    pub payment_id: Option<Uuid>,
    /// How the customer pays; `None` for their default method.
    pub payment_token: Option<String>,
    /// When it was placed.
    #[serde(with = "eventmart_events::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl Order {
    /// Whether the order has reached its final status.
    pub fn is_final(&self) -> bool {
        self.status != OrderStatus::Pending
    }
}

/// Place a new order at the prices of the local replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceOrder {
    /// The new order's id.
    pub order_id: Uuid,
    /// What the customer asked for.
    pub request: OrderRequest,
    /// Whether the customer is known (has registered).
    pub user_known: bool,
    /// The current unit price of each known product of the request.
    pub prices: BTreeMap<Uuid, Money>,
    /// Now.
    pub at: DateTime<Utc>,
}

/// What can be asked of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A customer places an order.
    PlaceOrder(PlaceOrder),
    /// The customer cancels their order.
    CancelOrder {
        /// Now.
        at: DateTime<Utc>,
    },
    /// The order's charge succeeded.
    ConfirmPayment {
        /// The payment.
        payment_id: Uuid,
        /// Now.
        at: DateTime<Utc>,
    },
    /// The order's charge was declined.
    FailPayment {
        /// The provider's reason.
        reason: String,
        /// Now.
        at: DateTime<Utc>,
    },
    /// Inventory could not reserve the order's lines.
    RejectReservation {
        /// Inventory's reason, if it gave one.
        reason: Option<String>,
        /// Now.
        at: DateTime<Utc>,
    },
    /// The order's deadline has passed.
    Expire {
        /// Now.
        at: DateTime<Utc>,
    },
}

/// Why an order command was refused, and what the caller can do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order does not exist (yet): wait for it, or check the id.
    #[error("the order does not exist")]
    NotFound,
    /// An order with this id exists already: use a new id.
    #[error("order {0} already exists")]
    AlreadyPlaced(Uuid),
    /// The customer is not known here (yet): register first, or retry shortly.
    #[error("user {0} is not known; register the user first, or retry shortly")]
    UnknownUser(Uuid),
    /// A product is not known here (yet): create it first, or retry shortly.
    #[error("product {0} is not known; create the product first, or retry shortly")]
    UnknownProduct(Uuid),
    /// The products are priced in different currencies: order them separately.
    #[error("the products are priced in {0} and {1}; an order is paid in one currency")]
    MixedCurrencies(String, String),
    /// The total does not fit the money type: order less.
    #[error("the order's total is too large")]
    TotalTooLarge,
    /// The order is paid for and can no longer be cancelled.
    #[error("order {0} is confirmed; a confirmed order cannot be cancelled")]
    Confirmed(Uuid),
    /// The order is cancelled already.
    #[error("order {0} is cancelled already")]
    Cancelled(Uuid),
}

impl OrderError {
    /// A stable snake_case code for the error.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::NotFound => "not_found",
            OrderError::AlreadyPlaced(_) => "order_exists",
            OrderError::UnknownUser(_) => "unknown_user",
            OrderError::UnknownProduct(_) => "unknown_product",
            OrderError::MixedCurrencies(..) => "mixed_currencies",
            OrderError::TotalTooLarge => "total_too_large",
            OrderError::Confirmed(_) => "order_confirmed",
            OrderError::Cancelled(_) => "order_cancelled",
        }
    }
}

/// The order aggregate's rules; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub struct OrderDecider;

impl Decider for OrderDecider {
    type State = Option<Order>;
    type Command = Command;
    type Event = Event;
    type Error = OrderError;

    fn decide(&self, state: &Option<Order>, command: &Command) -> Result<Vec<Event>, OrderError> {
        let Command::PlaceOrder(place) = command else {
            let order = state.as_ref().ok_or(OrderError::NotFound)?;
            return decide_on(order, command);
        };
        if state.is_some() {
            return Err(OrderError::AlreadyPlaced(place.order_id));
        }
        place_order(place).map(|created| vec![created.into()])
    }

    fn evolve(&self, state: Option<Order>, event: &Event) -> Option<Order> {
        match (state, event) {
            (None, Event::OrderCreated(created)) => Some(Order {
                order_id: created.order_id,
                user_id: created.user_id,
                lines: created.lines.clone(),
                total: created.total,
                status: OrderStatus::Pending,
                reason: None,
                payment_id: None,
                payment_token: created.payment_token.clone(),
                created_at: created.created_at,
            }),
            (Some(mut order), Event::OrderConfirmed(confirmed)) => {
                order.status = OrderStatus::Confirmed;
                order.payment_id = Some(confirmed.payment_id);
                Some(order)
            }
            (Some(mut order), Event::OrderCancelled(cancelled)) => {
                order.status = OrderStatus::Cancelled;
                order.reason = Some(cancelled.reason);
                Some(order)
            }
            (state, _) => state,
        }
    }
}

/// The `order.created` of a new order, priced from the replica.
fn place_order(place: &PlaceOrder) -> Result<OrderCreated, OrderError> {
    let request = &place.request;
    if !place.user_known {
        return Err(OrderError::UnknownUser(request.user_id));
    }
    let mut lines = Vec::with_capacity(request.lines.len());
    for line in &request.lines {
        let unit_price = *place
            .prices
            .get(&line.product_id)
            .ok_or(OrderError::UnknownProduct(line.product_id))?;
        lines.push(OrderLine {
            product_id: line.product_id,
            quantity: line.quantity.get(),
            unit_price,
        });
    }
    let total = total_of(&lines)?;
    Ok(OrderCreated {
        order_id: place.order_id,
        user_id: request.user_id,
        lines,
        total,
        payment_token: request
            .payment_token
            .as_ref()
            .map(|t| t.as_str().to_owned()),
        created_at: place.at,
    })
}

/// The sum of quantity × unit price, all in one currency.
fn total_of(lines: &[OrderLine]) -> Result<Money, OrderError> {
    // A request always has lines; without any there is no currency to total in.
    let currency = lines
        .first()
        .map(|line| line.unit_price.currency)
        .ok_or(OrderError::TotalTooLarge)?;
    let mut cents: i64 = 0;
    for line in lines {
        if line.unit_price.currency != currency {
            return Err(OrderError::MixedCurrencies(
                currency.to_string(),
                line.unit_price.currency.to_string(),
            ));
        }
        cents = line
            .unit_price
            .cents
            .checked_mul(i64::from(line.quantity))
            .and_then(|amount| cents.checked_add(amount))
            .ok_or(OrderError::TotalTooLarge)?;
    }
    Ok(Money::new(cents, currency))
}

/// What a command other than placing does to an existing order. Facts from other services
/// (payment, reservation, deadline) change only a pending order; for a final one they are
/// moot and decide nothing.
fn decide_on(order: &Order, command: &Command) -> Result<Vec<Event>, OrderError> {
    let id = order.order_id;
    let cancelled = |reason, detail: Option<String>, at: &DateTime<Utc>| {
        Ok(vec![
            OrderCancelled {
                order_id: id,
                reason,
                detail,
                cancelled_at: *at,
            }
            .into(),
        ])
    };
    match (order.status, command) {
        (_, Command::PlaceOrder(_)) => Err(OrderError::AlreadyPlaced(id)),
        (OrderStatus::Confirmed, Command::CancelOrder { .. }) => Err(OrderError::Confirmed(id)),
        (OrderStatus::Cancelled, Command::CancelOrder { .. }) => Err(OrderError::Cancelled(id)),
        (OrderStatus::Pending, Command::CancelOrder { at }) => {
            cancelled(CancellationReason::CancelledByCustomer, None, at)
        }
        (OrderStatus::Pending, Command::ConfirmPayment { payment_id, at }) => Ok(vec![
            OrderConfirmed {
                order_id: id,
                payment_id: *payment_id,
                confirmed_at: *at,
            }
            .into(),
        ]),
        (OrderStatus::Pending, Command::FailPayment { reason, at }) => cancelled(
            CancellationReason::PaymentDeclined,
            Some(reason.clone()),
            at,
        ),
        (OrderStatus::Pending, Command::RejectReservation { reason, at }) => {
            cancelled(CancellationReason::OutOfStock, reason.clone(), at)
        }
        (OrderStatus::Pending, Command::Expire { at }) => {
            cancelled(CancellationReason::Timeout, None, at)
        }
        (
            OrderStatus::Confirmed | OrderStatus::Cancelled,
            Command::ConfirmPayment { .. }
            | Command::FailPayment { .. }
            | Command::RejectReservation { .. }
            | Command::Expire { .. },
        ) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use eventmart_events::Currency;
    use eventmart_runtime::testing::Scenario;

    use super::*;
    use crate::domain::request::{PaymentToken, Quantity, RequestedLine};

    fn at() -> DateTime<Utc> {
        eventmart_events::timestamp::from_millis(1_714_564_800_123).unwrap()
    }

    fn later() -> DateTime<Utc> {
        at() + TimeDelta::seconds(5)
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(0x0190_c2a8_7a8e_7cc4_9f3c_0000_0000_0000 + n)
    }

    const ORDER: u128 = 1;
    const USER: u128 = 2;
    const BOOK: u128 = 3;
    const PEN: u128 = 4;
    const PAYMENT: u128 = 9;

    fn eur(cents: i64) -> Money {
        Money::new(cents, Currency::EUR)
    }

    fn line(product: u128, quantity: i64) -> RequestedLine {
        RequestedLine {
            product_id: id(product),
            quantity: Quantity::parse(quantity).unwrap(),
        }
    }

    fn place(lines: Vec<RequestedLine>, prices: &[(u128, Money)]) -> PlaceOrder {
        PlaceOrder {
            order_id: id(ORDER),
            request: OrderRequest {
                user_id: id(USER),
                lines,
                payment_token: Some(PaymentToken::parse("tok_visa").unwrap()),
            },
            user_known: true,
            prices: prices.iter().map(|(p, m)| (id(*p), *m)).collect(),
            at: at(),
        }
    }

    fn created() -> Event {
        OrderCreated {
            order_id: id(ORDER),
            user_id: id(USER),
            lines: vec![
                OrderLine {
                    product_id: id(BOOK),
                    quantity: 2,
                    unit_price: eur(1999),
                },
                OrderLine {
                    product_id: id(PEN),
                    quantity: 1,
                    unit_price: eur(500),
                },
            ],
            total: eur(4498),
            payment_token: Some("tok_visa".into()),
            created_at: at(),
        }
        .into()
    }

    fn confirmed() -> Event {
        OrderConfirmed {
            order_id: id(ORDER),
            payment_id: id(PAYMENT),
            confirmed_at: later(),
        }
        .into()
    }

    fn cancelled(reason: CancellationReason, detail: Option<&str>) -> Event {
        OrderCancelled {
            order_id: id(ORDER),
            reason,
            detail: detail.map(str::to_owned),
            cancelled_at: later(),
        }
        .into()
    }

    fn scenario() -> Scenario<OrderDecider> {
        Scenario::with(OrderDecider)
    }

    #[test]
    fn placing_an_order_prices_it_from_the_replica_and_totals_it() {
        scenario()
            .when(Command::PlaceOrder(place(
                vec![line(BOOK, 2), line(PEN, 1)],
                &[(BOOK, eur(1999)), (PEN, eur(500))],
            )))
            .then_expect_events([created()]);
    }

    #[test]
    fn placing_an_order_for_an_unknown_user_is_refused() {
        let mut command = place(vec![line(BOOK, 1)], &[(BOOK, eur(1999))]);
        command.user_known = false;
        scenario()
            .when(Command::PlaceOrder(command))
            .then_expect_error(OrderError::UnknownUser(id(USER)));
    }

    #[test]
    fn placing_an_order_for_an_unknown_product_names_it() {
        scenario()
            .when(Command::PlaceOrder(place(
                vec![line(BOOK, 1), line(PEN, 1)],
                &[(BOOK, eur(1999))],
            )))
            .then_expect_error(OrderError::UnknownProduct(id(PEN)));
    }

    #[test]
    fn placing_an_order_in_two_currencies_is_refused() {
        scenario()
            .when(Command::PlaceOrder(place(
                vec![line(BOOK, 1), line(PEN, 1)],
                &[(BOOK, eur(1999)), (PEN, Money::new(500, Currency::USD))],
            )))
            .then_expect_error(OrderError::MixedCurrencies("EUR".into(), "USD".into()));
    }

    #[test]
    fn placing_an_order_whose_total_overflows_is_refused() {
        scenario()
            .when(Command::PlaceOrder(place(
                vec![line(BOOK, 1000), line(PEN, 1)],
                &[(BOOK, eur(i64::MAX / 1000)), (PEN, eur(i64::MAX))],
            )))
            .then_expect_error(OrderError::TotalTooLarge);
        scenario()
            .when(Command::PlaceOrder(place(
                vec![line(BOOK, 2)],
                &[(BOOK, eur(i64::MAX / 2 + 1))],
            )))
            .then_expect_error(OrderError::TotalTooLarge);
    }

    #[test]
    fn placing_an_order_twice_is_refused() {
        scenario()
            .given([created()])
            .when(Command::PlaceOrder(place(
                vec![line(BOOK, 1)],
                &[(BOOK, eur(1))],
            )))
            .then_expect_error(OrderError::AlreadyPlaced(id(ORDER)));
    }

    #[test]
    fn a_completed_payment_confirms_a_pending_order() {
        scenario()
            .given([created()])
            .when(Command::ConfirmPayment {
                payment_id: id(PAYMENT),
                at: later(),
            })
            .then_expect_events([confirmed()]);
    }

    #[test]
    fn a_completed_payment_for_a_cancelled_order_changes_nothing() {
        scenario()
            .given([created(), cancelled(CancellationReason::Timeout, None)])
            .when(Command::ConfirmPayment {
                payment_id: id(PAYMENT),
                at: later(),
            })
            .then_expect_events([]);
    }

    #[test]
    fn a_completed_payment_for_a_confirmed_order_changes_nothing() {
        scenario()
            .given([created(), confirmed()])
            .when(Command::ConfirmPayment {
                payment_id: id(PAYMENT),
                at: later(),
            })
            .then_expect_events([]);
    }

    #[test]
    fn a_failed_payment_cancels_a_pending_order_as_declined() {
        scenario()
            .given([created()])
            .when(Command::FailPayment {
                reason: "insufficient_funds".into(),
                at: later(),
            })
            .then_expect_events([cancelled(
                CancellationReason::PaymentDeclined,
                Some("insufficient_funds"),
            )]);
    }

    #[test]
    fn a_failed_payment_for_a_final_order_changes_nothing() {
        scenario()
            .given([created(), confirmed()])
            .when(Command::FailPayment {
                reason: "insufficient_funds".into(),
                at: later(),
            })
            .then_expect_events([]);
    }

    #[test]
    fn a_rejected_reservation_cancels_a_pending_order_as_out_of_stock() {
        scenario()
            .given([created()])
            .when(Command::RejectReservation {
                reason: Some("out_of_stock".into()),
                at: later(),
            })
            .then_expect_events([cancelled(
                CancellationReason::OutOfStock,
                Some("out_of_stock"),
            )]);
    }

    #[test]
    fn a_rejected_reservation_for_a_cancelled_order_changes_nothing() {
        scenario()
            .given([
                created(),
                cancelled(CancellationReason::CancelledByCustomer, None),
            ])
            .when(Command::RejectReservation {
                reason: None,
                at: later(),
            })
            .then_expect_events([]);
    }

    #[test]
    fn a_pending_order_past_its_deadline_is_cancelled_as_timed_out() {
        scenario()
            .given([created()])
            .when(Command::Expire { at: later() })
            .then_expect_events([cancelled(CancellationReason::Timeout, None)]);
    }

    #[test]
    fn the_deadline_of_a_final_order_changes_nothing() {
        scenario()
            .given([created(), confirmed()])
            .when(Command::Expire { at: later() })
            .then_expect_events([]);
        scenario()
            .given([created(), cancelled(CancellationReason::OutOfStock, None)])
            .when(Command::Expire { at: later() })
            .then_expect_events([]);
    }

    #[test]
    fn the_customer_cancels_a_pending_order() {
        scenario()
            .given([created()])
            .when(Command::CancelOrder { at: later() })
            .then_expect_events([cancelled(CancellationReason::CancelledByCustomer, None)]);
    }

    #[test]
    fn a_confirmed_order_cannot_be_cancelled_by_the_customer() {
        scenario()
            .given([created(), confirmed()])
            .when(Command::CancelOrder { at: later() })
            .then_expect_error(OrderError::Confirmed(id(ORDER)));
    }

    #[test]
    fn a_cancelled_order_cannot_be_cancelled_again() {
        scenario()
            .given([created(), cancelled(CancellationReason::Timeout, None)])
            .when(Command::CancelOrder { at: later() })
            .then_expect_error(OrderError::Cancelled(id(ORDER)));
    }

    #[test]
    fn nothing_but_placing_applies_to_an_order_that_does_not_exist() {
        for command in [
            Command::CancelOrder { at: later() },
            Command::Expire { at: later() },
            Command::ConfirmPayment {
                payment_id: id(PAYMENT),
                at: later(),
            },
        ] {
            scenario()
                .when(command)
                .then_expect_error(OrderError::NotFound);
        }
    }

    #[test]
    fn events_fold_into_the_order_they_describe() {
        let order = OrderDecider
            .replay(&[created(), confirmed()])
            .expect("an order");
        assert_eq!(order.status, OrderStatus::Confirmed);
        assert_eq!(order.payment_id, Some(id(PAYMENT)));
        assert_eq!(order.total, eur(4498));
        assert_eq!(order.payment_token.as_deref(), Some("tok_visa"));
        let order = OrderDecider
            .replay(&[created(), cancelled(CancellationReason::OutOfStock, None)])
            .expect("an order");
        assert_eq!(order.status, OrderStatus::Cancelled);
        assert_eq!(order.reason, Some(CancellationReason::OutOfStock));
    }

    #[test]
    fn a_second_order_created_does_not_replace_the_first() {
        let Event::OrderCreated(mut other) = created() else {
            unreachable!()
        };
        other.total = eur(1);
        let order = OrderDecider
            .replay(&[created(), other.into()])
            .expect("an order");
        assert_eq!(order.total, eur(4498));
    }

    #[test]
    fn outcomes_of_an_unknown_order_fold_into_nothing() {
        assert_eq!(OrderDecider.replay(&[confirmed()]), None);
    }

    #[test]
    fn an_order_serializes_as_the_api_shows_it() {
        let order = OrderDecider.replay(&[created()]).expect("an order");
        let json = serde_json::to_value(&order).unwrap();
        assert_eq!(json["status"], "PENDING");
        assert_eq!(
            json["total"],
            serde_json::json!({"cents": 4498, "currency": "EUR"})
        );
        assert_eq!(json["lines"][0]["unit_price"]["cents"], 1999);
        assert_eq!(json["reason"], serde_json::Value::Null);
        assert_eq!(json["created_at"], "2024-05-01T12:00:00.123Z");
    }
}
