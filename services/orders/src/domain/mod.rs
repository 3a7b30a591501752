//! The orders domain, pure: no I/O, no clock, no database.
//!
//! - [`request`]: what a customer asks for, parsed into values that can only be valid
//!   ([`Quantity`], [`PaymentToken`], [`OrderRequest`]).
//! - [`order`]: the order aggregate, its commands and rules ([`OrderDecider`]).
//! - [`replicas`]: what orders keeps of other services' facts: users and product prices.
//!
//! Not here: reading or writing state, envelopes, HTTP (see `api`, `reactions`, `record`).

pub mod order;
pub mod replicas;
pub mod request;

pub use order::{Command, Order, OrderDecider, OrderError, OrderStatus, PlaceOrder};
pub use replicas::{Product, ReplicaError, User};
pub use request::{FieldError, OrderRequest, PaymentToken, Quantity, RequestedLine};
