//! The `charge` timer: the provider's answer to a charge, due once the provider's latency
//! has passed since the charge started.
//!
//! Firing decides with the provider's rules against the user's current credit and appends
//! `payment.completed` (followed at once by `payment.refunded` if the order was cancelled
//! meanwhile) or `payment.failed`, continuing the order's flow from its reservation.

use eventmart_events::Event;
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::decider::Decider;
use eventmart_runtime::timers::TimerHandler;
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{Command, Payments};
use crate::store::{Change, Store, continuing, load_credit, load_payment};

/// The `charge` timer's handler.
#[derive(Debug)]
pub(crate) struct Charges {
    /// Where changes are written.
    pub(crate) store: Store,
    /// The decider.
    pub(crate) payments: Payments,
}

impl TimerHandler for Charges {
    async fn fire(&self, tx: &mut AnyConnection, id: &str) -> Result<(), HandlerError> {
        let order_id = Uuid::parse_str(id).map_err(|e| {
            HandlerError::permanent(format!("charge timer {id:?} is not an order id: {e}"))
        })?;
        let mut change = Change::new(order_id, load_payment(tx, order_id).await?);
        let outstanding_cents = match change.after.user_id {
            Some(user_id) => {
                let credit = load_credit(tx, user_id).await?;
                // The decision holds only for the credit it read: written at this version,
                // a charge made meanwhile by another instance (or partition) is a conflict,
                // and the charge is decided again on the credit that includes it.
                change.decided_on_credit(user_id, credit.version);
                credit.state.outstanding_cents
            }
            None => 0,
        };
        let command = Command::Charge {
            outstanding_cents,
            at: eventmart_events::timestamp::now(),
        };
        let events = match self.payments.decide(&change.after, &command) {
            Ok(events) => events,
            Err(reason) => {
                tracing::debug!(%order_id, %reason, "nothing to charge");
                return Ok(());
            }
        };
        let causes = &change.after.causes;
        let events = events
            .into_iter()
            .map(|event| {
                let envelope = match event {
                    Event::PaymentRefunded(_) => {
                        let cause = causes.cancelled.as_ref().or(causes.reserved.as_ref());
                        continuing(&event, cause, "refund")
                    }
                    _ => continuing(&event, causes.reserved.as_ref(), "charge"),
                };
                (event, envelope)
            })
            .collect();
        change.decide(events);
        self.store.write(tx, change).await?;
        Ok(())
    }
}
