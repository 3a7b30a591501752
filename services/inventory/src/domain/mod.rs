//! The inventory's rules, pure: no I/O, no clock, no database.
//!
//! - `values`: the parsed values commands are made of: [`Quantity`], [`Delta`], [`Reason`].
//! - `state`: the [`Stock`] and [`Reservation`] rows, and the [`Inventory`] a decision sees.
//! - `decider`: every rule, as [`InventoryDecider`]'s `decide` and `evolve` over
//!   `eventmart_events::Event`, so that events from kcat fold in exactly as decided ones do.
//! - `facts`: [`accept_fact`], whether a stock change reported from outside can be applied.

mod decider;
mod facts;
mod state;
mod values;

pub use self::decider::{Command, DomainError, InventoryDecider, decide_and_fold};
pub use self::facts::{FactError, accept_fact};
pub use self::state::{Inventory, Reservation, ReservationStatus, Stock, reservation_cause};
pub use self::values::{Delta, InvalidValue, Quantity, Reason};
