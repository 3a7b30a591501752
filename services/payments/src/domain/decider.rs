//! [`Payments`]: every decision about an order's payment — charge, refund on cancellation,
//! manual refund — as a pure [`Decider`] over the wire events.

use chrono::{DateTime, Utc};
use eventmart_events::payments::{PaymentCompleted, PaymentFailed, PaymentRefunded};
use eventmart_events::{Event, Money};
use eventmart_runtime::decider::Decider;
use uuid::Uuid;

use super::payment::{Payment, Status, payment_id};
use super::provider::Provider;

/// The `reason` of a refund made because the order was cancelled.
pub const REFUND_ORDER_CANCELLED: &str = "order_cancelled";

/// Longest reason a manual refund may give, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// Why a manual refund is made: non-empty text of at most [`MAX_REASON_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundReason(String);

impl RefundReason {
    /// Parses a reason; blank or too long text is refused with what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("must not be empty".to_owned());
        }
        if text.chars().count() > MAX_REASON_CHARS {
            return Err(format!("must be at most {MAX_REASON_CHARS} characters"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the service is asked to decide about one order's payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// The provider answers the charge in flight; the user has `outstanding_cents` charged
    /// and not refunded before it.
    Charge {
        /// The user's outstanding amount before this charge.
        outstanding_cents: i64,
        /// Now.
        at: DateTime<Utc>,
    },
    /// The order was cancelled (`order.cancelled`): pay back what was charged.
    Cancel {
        /// Now.
        at: DateTime<Utc>,
    },
    /// Someone asks for the charge to be paid back.
    Refund {
        /// Why.
        reason: RefundReason,
        /// Now.
        at: DateTime<Utc>,
    },
}

/// Why a payment command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// No charge is at the provider (it was never started, the order was cancelled before
    /// it could be, or it already has an outcome): nothing to do.
    #[error("no charge is in flight (the payment is {})", .status.as_str())]
    NotCharging {
        /// Where the payment stands.
        status: Status,
    },
    /// Only a completed payment can be refunded.
    #[error("only a COMPLETED payment can be refunded; this one is {}", .status.as_str())]
    NotRefundable {
        /// Where the payment stands.
        status: Status,
    },
}

/// The payments decider, with the provider it charges through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payments {
    /// The simulated payment provider.
    pub provider: Provider,
}

impl Payments {
    /// The decider charging through `provider`.
    pub fn new(provider: Provider) -> Self {
        Self { provider }
    }

    fn charge(
        &self,
        state: &Payment,
        outstanding_cents: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<Event>, PaymentError> {
        let not_charging = PaymentError::NotCharging {
            status: state.status,
        };
        let (Status::Charging, Some(order_id), Some(terms)) =
            (state.status, state.order_id, &state.order)
        else {
            return Err(not_charging);
        };
        let payment_id = payment_id(order_id);
        let answer = self.provider.charge(
            terms.payment_token.as_deref(),
            terms.total.cents,
            outstanding_cents,
        );
        match answer {
            Err(decline) => Ok(vec![
                PaymentFailed {
                    payment_id,
                    order_id,
                    user_id: terms.user_id,
                    amount: terms.total,
                    reason: decline.as_str().to_owned(),
                    failed_at: at,
                }
                .into(),
            ]),
            Ok(()) => {
                let mut events = vec![
                    PaymentCompleted {
                        payment_id,
                        order_id,
                        user_id: terms.user_id,
                        amount: terms.total,
                        completed_at: at,
                    }
                    .into(),
                ];
                // The order was cancelled while the provider was charging: pay it back at once.
                if state.cancelled {
                    events.push(refunded(
                        payment_id,
                        order_id,
                        terms.total,
                        REFUND_ORDER_CANCELLED,
                        at,
                    ));
                }
                Ok(events)
            }
        }
    }
}

impl Decider for Payments {
    type State = Payment;
    type Command = Command;
    type Event = Event;
    type Error = PaymentError;

    fn decide(&self, state: &Payment, command: &Command) -> Result<Vec<Event>, PaymentError> {
        match command {
            Command::Charge {
                outstanding_cents,
                at,
            } => self.charge(state, *outstanding_cents, *at),
            Command::Cancel { at } => match state.status {
                Status::Completed => Ok(vec![refund(state, REFUND_ORDER_CANCELLED, *at)?]),
                // A charge still in flight is refunded when it completes; nothing else was
                // charged.
                _ => Ok(Vec::new()),
            },
            Command::Refund { reason, at } => Ok(vec![refund(state, reason.as_str(), *at)?]),
        }
    }

    fn evolve(&self, state: Payment, event: &Event) -> Payment {
        state.evolve(event)
    }
}

/// `payment.refunded` paying back all of a completed payment.
fn refund(state: &Payment, reason: &str, at: DateTime<Utc>) -> Result<Event, PaymentError> {
    let (Status::Completed, Some(order_id), Some(amount)) =
        (state.status, state.order_id, state.amount)
    else {
        return Err(PaymentError::NotRefundable {
            status: state.status,
        });
    };
    let payment_id = state.payment_id.unwrap_or_else(|| payment_id(order_id));
    Ok(refunded(payment_id, order_id, amount, reason, at))
}

fn refunded(
    payment_id: Uuid,
    order_id: Uuid,
    amount: Money,
    reason: &str,
    at: DateTime<Utc>,
) -> Event {
    PaymentRefunded {
        payment_id,
        order_id,
        amount,
        reason: reason.to_owned(),
        refunded_at: at,
    }
    .into()
}

#[cfg(test)]
mod tests;
