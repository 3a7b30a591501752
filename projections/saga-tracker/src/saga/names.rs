//! The names a saga is described with: its steps, the services that take them and the
//! states a saga is in, each with the text the API and the database use.

use std::fmt;

/// What one event of a saga did. Each step belongs to one service, the owner of the topic
/// its event is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// `order.created`: the order was placed; the saga starts.
    Created,
    /// `order.confirmed`: the order is paid for.
    Confirmed,
    /// `order.cancelled`: the order will not be fulfilled.
    Cancelled,
    /// `inventory.updated` RESERVED: every line is held for the order.
    Reserved,
    /// `inventory.updated` REJECTED: the lines could not all be held; nothing is.
    Rejected,
    /// `inventory.updated` RELEASED: what a cancelled order held is given back.
    Released,
    /// `inventory.updated` SOLD: what a confirmed order held is sold.
    Sold,
    /// `payment.completed`: the order's charge went through.
    Completed,
    /// `payment.failed`: the provider declined the charge.
    Failed,
    /// `payment.refunded`: the charge was paid back.
    Refunded,
}

impl Step {
    /// Every step, by service and in the order a saga usually goes through them.
    pub const ALL: [Step; 10] = [
        Step::Created,
        Step::Confirmed,
        Step::Cancelled,
        Step::Reserved,
        Step::Rejected,
        Step::Released,
        Step::Sold,
        Step::Completed,
        Step::Failed,
        Step::Refunded,
    ];

    /// The name the API and the database use, e.g. `RESERVED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Created => "CREATED",
            Step::Confirmed => "CONFIRMED",
            Step::Cancelled => "CANCELLED",
            Step::Reserved => "RESERVED",
            Step::Rejected => "REJECTED",
            Step::Released => "RELEASED",
            Step::Sold => "SOLD",
            Step::Completed => "COMPLETED",
            Step::Failed => "FAILED",
            Step::Refunded => "REFUNDED",
        }
    }

    /// Reads a step name (exactly as [`Step::as_str`] writes it).
    pub fn parse(text: &str) -> Result<Step, InvalidName> {
        Step::ALL
            .into_iter()
            .find(|step| step.as_str() == text)
            .ok_or_else(|| InvalidName::new(text, Step::ALL.map(Step::as_str)))
    }

    /// The service whose topic the step's event is on.
    pub fn service(self) -> Service {
        match self {
            Step::Created | Step::Confirmed | Step::Cancelled => Service::Orders,
            Step::Reserved | Step::Rejected | Step::Released | Step::Sold => Service::Inventory,
            Step::Completed | Step::Failed | Step::Refunded => Service::Payments,
        }
    }
}

/// A service that takes part in the order saga.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Places, confirms and cancels orders (topic `orders`).
    Orders,
    /// Reserves, releases and sells stock (topic `inventory`).
    Inventory,
    /// Charges and refunds (topic `payments`).
    Payments,
}

impl Service {
    /// Every service, in the order the saga first meets them.
    pub const ALL: [Service; 3] = [Service::Orders, Service::Inventory, Service::Payments];

    /// The service's name, which is also its topic's: `orders`, `inventory`, `payments`.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::Orders => "orders",
            Service::Inventory => "inventory",
            Service::Payments => "payments",
        }
    }

    /// Reads a service name.
    pub fn parse(text: &str) -> Result<Service, InvalidName> {
        Service::ALL
            .into_iter()
            .find(|service| service.as_str() == text)
            .ok_or_else(|| InvalidName::new(text, Service::ALL.map(Service::as_str)))
    }
}

/// Where a saga stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// The order is neither confirmed nor cancelled yet.
    Running,
    /// The order is cancelled, and stock it holds (or may be about to hold) is not given
    /// back yet, or a charge is not paid back yet.
    Compensating,
    /// The order is confirmed (its stock is sold next).
    Confirmed,
    /// The order is cancelled and every compensation is done.
    Cancelled,
}

impl State {
    /// Every state, in the order a saga goes through them.
    pub const ALL: [State; 4] = [
        State::Running,
        State::Compensating,
        State::Confirmed,
        State::Cancelled,
    ];

    /// The name the API and the database use, e.g. `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Compensating => "compensating",
            State::Confirmed => "confirmed",
            State::Cancelled => "cancelled",
        }
    }

    /// Reads a state name.
    pub fn parse(text: &str) -> Result<State, InvalidName> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| InvalidName::new(text, State::ALL.map(State::as_str)))
    }

    /// Whether the saga still has work to do before the order's outcome holds: running
    /// (no outcome yet) or compensating (cancelled, with effects still to undo).
    pub fn is_unfinished(self) -> bool {
        matches!(self, State::Running | State::Compensating)
    }
}

macro_rules! display_as_str {
    ($($name:ty),+) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

display_as_str!(Step, Service, State);

/// A name that is none of the expected ones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {}, got {got:?}", expected.join(", "))]
pub struct InvalidName {
    /// The names allowed.
    pub expected: Vec<&'static str>,
    /// The text given.
    pub got: String,
}

impl InvalidName {
    fn new<const N: usize>(got: &str, expected: [&'static str; N]) -> Self {
        Self {
            expected: expected.to_vec(),
            got: got.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_and_unknown_ones_are_refused() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Ok(step));
        }
        for service in Service::ALL {
            assert_eq!(Service::parse(service.as_str()), Ok(service));
        }
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Ok(state));
        }
        let refused = State::parse("stuck").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "must be one of running, compensating, confirmed, cancelled, got \"stuck\""
        );
        assert!(Step::parse("reserved").is_err());
        assert!(Service::parse("").is_err());
    }

    #[test]
    fn each_step_belongs_to_the_service_whose_topic_its_event_is_on() {
        let owners: Vec<_> = Step::ALL.iter().map(|s| s.service().as_str()).collect();
        assert_eq!(
            owners,
            [
                "orders",
                "orders",
                "orders",
                "inventory",
                "inventory",
                "inventory",
                "inventory",
                "payments",
                "payments",
                "payments"
            ]
        );
    }

    #[test]
    fn only_running_and_compensating_sagas_are_unfinished() {
        let unfinished: Vec<_> = State::ALL
            .into_iter()
            .filter(|s| s.is_unfinished())
            .collect();
        assert_eq!(unfinished, [State::Running, State::Compensating]);
    }
}
