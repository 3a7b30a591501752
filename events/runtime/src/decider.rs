//! The shape of every aggregate's domain logic: a pure decider.
//!
//! `decide` holds all business rules: given the current state and a command, it returns the
//! events to append or why not. `evolve` holds none: it folds one event into the state, and
//! must accept any event that was ever appended (events are facts). Neither does I/O, so
//! both are unit-tested without a broker or database (see [`crate::testing::Scenario`]).

use std::fmt::Debug;

/// An aggregate's pure domain logic.
pub trait Decider {
    /// What the aggregate knows; `Default` is the state before its first event.
    type State: Default + Clone + Debug;
    /// What a caller asks for, imperative (`PlaceOrder`).
    type Command: Debug;
    /// What happened, past tense (`OrderCreated`).
    type Event: Clone + Debug + PartialEq;
    /// Why a command was refused.
    type Error: Debug + PartialEq;

    /// The events `command` produces in `state`, or why it is refused. All business logic
    /// belongs here.
    fn decide(
        &self,
        state: &Self::State,
        command: &Self::Command,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// The state after `event`. No business logic here: only record what happened.
    fn evolve(&self, state: Self::State, event: &Self::Event) -> Self::State;

    /// The state after all of `events`, in order.
    fn replay<'a>(&self, events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), |state, event| {
                self.evolve(state, event)
            })
    }
}
