//! The catalog of event types: for each, its wire name, topic, Avro record name and schema.
//!
//! The schemas are the `.avsc` files under `schemas/`, embedded at build time and parsed once
//! on first use. The catalog itself is declared next to [`Event`](crate::Event), from which it
//! is generated, so the two cannot disagree; tests check that it also matches the folder.

use std::fmt;
use std::sync::LazyLock;

use apache_avro::Schema;

use crate::topics::Topic;

/// One event type: everything needed to put it on the wire or recognise it there.
pub struct EventType {
    /// The dotted wire name, e.g. `"order.created"`; the `event_type` header.
    pub name: &'static str,
    /// The topic its events go to.
    pub topic: Topic,
    /// The full name of its Avro record, e.g. `"eventmart.orders.OrderCreated"`.
    pub record_name: &'static str,
    /// The schema's text, exactly as in `schemas/<topic>/<name>.avsc`.
    pub avsc: &'static str,
    schema: LazyLock<Schema>,
}

impl EventType {
    /// Declares an event type; `parse` turns the embedded text into a schema on first use.
    pub(crate) const fn new(
        name: &'static str,
        topic: Topic,
        record_name: &'static str,
        avsc: &'static str,
        parse: fn() -> Schema,
    ) -> Self {
        EventType {
            name,
            topic,
            record_name,
            avsc,
            schema: LazyLock::new(parse),
        }
    }

    /// The parsed schema (the reader schema every decoded value is resolved to).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema file's path relative to `schemas/`, e.g. `"orders/order.created.avsc"`.
    pub fn path(&self) -> String {
        format!("{}/{}.avsc", self.topic.base_name(), self.name)
    }

    /// The registry subject its schema is registered under for the topic with full name
    /// `topic_name`: `"<topic_name>-<record_name>"` (TopicRecordNameStrategy).
    pub fn subject(&self, topic_name: &str) -> String {
        format!("{topic_name}-{}", self.record_name)
    }

    /// The event type with this wire name (`"order.created"`).
    pub fn by_name(name: &str) -> Option<&'static EventType> {
        catalog().iter().copied().find(|t| t.name == name)
    }

    /// The event type whose Avro record has this full name (`"eventmart.orders.OrderCreated"`).
    pub fn by_record_name(record_name: &str) -> Option<&'static EventType> {
        catalog()
            .iter()
            .copied()
            .find(|t| t.record_name == record_name)
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventType")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .field("record_name", &self.record_name)
            .finish_non_exhaustive()
    }
}

/// Every event type, in the order of [`Event`](crate::Event)'s variants.
pub fn catalog() -> &'static [&'static EventType] {
    crate::event::CATALOG
}

/// The wire names of every event type, comma-separated, for error messages.
pub(crate) fn known_names() -> String {
    catalog()
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a schema embedded from `schemas/`. A test parses every one, so this cannot fail in a
/// build that passed its tests.
pub(crate) fn parse_embedded(record_name: &str, avsc: &str) -> Schema {
    Schema::parse_str(avsc)
        .unwrap_or_else(|e| panic!("the embedded schema of {record_name} does not parse: {e}"))
}
