//! A user's credit: how much they have charged and not refunded, over all their orders.
//! The provider declines a charge that would take it above the credit limit.

use eventmart_events::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::payment::Payment;

/// The state of aggregate `credit`/`<user_id>`. Amounts are minor units of the system's
/// single currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// Charged and not refunded, in minor units.
    pub outstanding_cents: i64,
}

impl Credit {
    /// The credit after a change of `cents` (positive for a charge, negative for a refund).
    pub fn changed_by(self, cents: i64) -> Self {
        Self {
            outstanding_cents: self.outstanding_cents.saturating_add(cents),
        }
    }
}

/// How `event`, one of `payment`'s own events, changes its user's credit: the user and the
/// signed change. A refund is counted against the user `payment` was charged to; one for a
/// payment whose user is unknown changes nobody's credit.
pub fn credit_change(payment: &Payment, event: &Event) -> Option<(Uuid, i64)> {
    match event {
        Event::PaymentCompleted(completed) => Some((completed.user_id, completed.amount.cents)),
        Event::PaymentRefunded(refunded) => payment
            .user_id
            .map(|user_id| (user_id, -refunded.amount.cents)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use eventmart_events::payments::{PaymentCompleted, PaymentFailed, PaymentRefunded};
    use eventmart_events::{Currency, Money};

    use super::*;

    fn eur(cents: i64) -> Money {
        Money::new(cents, Currency::EUR)
    }

    #[test]
    fn a_charge_adds_to_its_users_credit_and_a_refund_takes_it_back() {
        let (order_id, user_id) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let completed = Event::PaymentCompleted(PaymentCompleted {
            payment_id: Uuid::from_u128(3),
            order_id,
            user_id,
            amount: eur(700),
            completed_at: Utc::now(),
        });
        let refunded = Event::PaymentRefunded(PaymentRefunded {
            payment_id: Uuid::from_u128(3),
            order_id,
            amount: eur(700),
            reason: "order_cancelled".into(),
            refunded_at: Utc::now(),
        });
        let paid = Payment::default().evolve(&completed);
        assert_eq!(credit_change(&paid, &completed), Some((user_id, 700)));
        assert_eq!(credit_change(&paid, &refunded), Some((user_id, -700)));
        assert_eq!(credit_change(&Payment::default(), &refunded), None);
        assert_eq!(
            Credit::default().changed_by(700).changed_by(-700),
            Credit::default()
        );
    }

    #[test]
    fn a_declined_charge_changes_no_credit() {
        let failed = Event::PaymentFailed(PaymentFailed {
            payment_id: Uuid::from_u128(3),
            order_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            amount: eur(700),
            reason: "card_declined".into(),
            failed_at: Utc::now(),
        });
        assert_eq!(credit_change(&Payment::default(), &failed), None);
    }
}
