//! An order's status and its names.

use std::fmt;

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Placed; inventory and payments have not settled it yet.
    Pending,
    /// Paid for: final.
    Confirmed,
    /// Cancelled (see the reason): final.
    Cancelled,
}

/// A status name that is none of PENDING, CONFIRMED, CANCELLED.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be one of PENDING, CONFIRMED, CANCELLED, got {0:?}")]
pub struct InvalidStatus(pub String);

impl Status {
    /// Every status, in the order an order goes through them.
    pub const ALL: [Status; 3] = [Status::Pending, Status::Confirmed, Status::Cancelled];

    /// The name the API and the database use: `PENDING`, `CONFIRMED`, `CANCELLED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Confirmed => "CONFIRMED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// Reads a status name, in any letter case.
    pub fn parse(text: &str) -> Result<Status, InvalidStatus> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| InvalidStatus(text.to_owned()))
    }

    /// Whether the order is decided, so that its status never changes again.
    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_in_any_case_and_unknown_ones_are_refused() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
            assert_eq!(Status::parse(&status.as_str().to_lowercase()), Ok(status));
        }
        assert_eq!(
            Status::parse("SHIPPED"),
            Err(InvalidStatus("SHIPPED".into()))
        );
        assert!(Status::parse("").is_err());
    }

    #[test]
    fn only_a_pending_order_is_undecided() {
        assert!(!Status::Pending.is_final());
        assert!(Status::Confirmed.is_final());
        assert!(Status::Cancelled.is_final());
    }
}
