//! Event contracts of eventmart: what travels on the topics, and how.
//!
//! - [`topics`]: topic names, optionally prefixed, and their dead-letter topics.
//! - [`users`], [`catalog`](mod@catalog), [`inventory`], [`orders`], [`payments`]: the
//!   payload of every event type, one module per topic; [`money`] and [`timestamp`] are the
//!   value types they share.
//! - [`Event`]: any event, with its wire name, topic and aggregate id; [`catalog()`] lists
//!   every [`EventType`] with its Avro schema (the `.avsc` files under `schemas/`, embedded).
//! - [`envelope`]: the metadata every record carries as headers.
//! - [`codec`]: values to events and back, as Avro through a schema registry or as JSON.
//! - [`text`]: the rule every text follows (no control characters), on the wire and in
//!   requests alike.
//!
//! Not here: Kafka clients, storage, and domain rules (those belong to the services). This
//! crate is the bottom of the dependency graph: services and the runtime depend on it.

pub mod catalog;
pub mod codec;
pub mod envelope;
mod event;
mod event_type;
pub mod inventory;
pub mod money;
pub mod orders;
pub mod payments;
pub mod text;
pub mod timestamp;
pub mod topics;
pub mod users;

#[cfg(any(test, feature = "samples"))]
pub mod samples;

pub use codec::{Codec, DecodeError, Decoded, EncodeError, Format, RawRecord, to_json};
pub use envelope::{Cause, Envelope, EnvelopeError, derived_event_id};
pub use event::Event;
pub use event_type::{EventType, catalog};
pub use money::{Currency, Money};
pub use topics::{Topic, Topics};
