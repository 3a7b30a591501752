//! The simulated payment provider: documented, deterministic answers to a charge.
//!
//! A charge is declined
//!
//! 1. with `card_declined` when it is made with the payment token `tok_decline`;
//! 2. with `insufficient_funds` when it would take the user's outstanding amount (what was
//!    charged and not refunded, over all their orders) above the credit limit;
//!
//! and succeeds otherwise. Answers depend only on these inputs, never on chance or the
//! clock; how long the provider takes is the service's configuration, not a rule.

/// The payment token whose charges the provider always declines.
pub const DECLINED_TOKEN: &str = "tok_decline";

/// Why the provider declined a charge; the wire `reason` of `payment.failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decline {
    /// The card (payment token) is refused: `card_declined`.
    CardDeclined,
    /// The charge would exceed the user's credit limit: `insufficient_funds`.
    InsufficientFunds,
}

impl Decline {
    /// The wire reason, e.g. `"card_declined"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decline::CardDeclined => "card_declined",
            Decline::InsufficientFunds => "insufficient_funds",
        }
    }
}

/// The provider, with the credit limit it applies to every user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provider {
    credit_limit_cents: i64,
}

impl Provider {
    /// A provider that lets each user have at most `credit_limit_cents` charged and not
    /// refunded at once.
    pub fn new(credit_limit_cents: i64) -> Self {
        Self { credit_limit_cents }
    }

    /// The credit limit, in minor units.
    pub fn credit_limit_cents(&self) -> i64 {
        self.credit_limit_cents
    }

    /// Answers a charge of `amount_cents` made with `payment_token` for a user who has
    /// `outstanding_cents` charged and not refunded: `Ok` if it succeeds, else why not (see
    /// the [module docs](self) for the rules, applied in that order).
    pub fn charge(
        &self,
        payment_token: Option<&str>,
        amount_cents: i64,
        outstanding_cents: i64,
    ) -> Result<(), Decline> {
        if payment_token == Some(DECLINED_TOKEN) {
            return Err(Decline::CardDeclined);
        }
        if outstanding_cents.saturating_add(amount_cents) > self.credit_limit_cents {
            return Err(Decline::InsufficientFunds);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decline_token_is_declined_whatever_the_credit() {
        let provider = Provider::new(1_000);
        assert_eq!(
            provider.charge(Some(DECLINED_TOKEN), 1, 0),
            Err(Decline::CardDeclined)
        );
    }

    #[test]
    fn a_charge_up_to_the_limit_succeeds_and_one_cent_more_is_declined() {
        let provider = Provider::new(1_000);
        assert_eq!(provider.charge(Some("tok_visa"), 400, 600), Ok(()));
        assert_eq!(
            provider.charge(None, 401, 600),
            Err(Decline::InsufficientFunds)
        );
    }

    #[test]
    fn reasons_are_the_wire_symbols() {
        assert_eq!(Decline::CardDeclined.as_str(), "card_declined");
        assert_eq!(Decline::InsufficientFunds.as_str(), "insufficient_funds");
    }
}
