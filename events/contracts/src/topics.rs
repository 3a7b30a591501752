//! Topic names: one topic per aggregate type, each with a dead-letter topic `<name>.dlq`.
//!
//! A [`Topics`] value adds an optional prefix to every name, so that a test (or a second
//! installation sharing a cluster) can use its own, unique set of topics. Creating topics is
//! not done here; that is the runtime's job.

use std::fmt;

/// Base name of the topic holding user events.
pub const USERS: &str = "users";
/// Base name of the topic holding product catalog events.
pub const CATALOG: &str = "catalog";
/// Base name of the topic holding stock events.
pub const INVENTORY: &str = "inventory";
/// Base name of the topic holding order events.
pub const ORDERS: &str = "orders";
/// Base name of the topic holding payment events.
pub const PAYMENTS: &str = "payments";

/// Suffix of a dead-letter topic, appended to the full name of the topic it serves.
pub const DLQ_SUFFIX: &str = ".dlq";

/// One of the five event topics, one per aggregate type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `users`, keyed by user id.
    Users,
    /// `catalog`, keyed by product id.
    Catalog,
    /// `inventory`, keyed by order id (reservations) or product id (restocks, adjustments).
    Inventory,
    /// `orders`, keyed by order id.
    Orders,
    /// `payments`, keyed by order id (one payment per order).
    Payments,
}

impl Topic {
    /// Every topic, in a fixed order.
    pub const ALL: [Topic; 5] = [
        Topic::Users,
        Topic::Catalog,
        Topic::Inventory,
        Topic::Orders,
        Topic::Payments,
    ];

    /// The name without any prefix, e.g. `"orders"`.
    pub fn base_name(self) -> &'static str {
        match self {
            Topic::Users => USERS,
            Topic::Catalog => CATALOG,
            Topic::Inventory => INVENTORY,
            Topic::Orders => ORDERS,
            Topic::Payments => PAYMENTS,
        }
    }

    /// The topic with this base name, if any (`"orders"` → [`Topic::Orders`]).
    pub fn from_base_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.base_name() == name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_name())
    }
}

/// The dead-letter topic of a topic given by its full name: `"<name>.dlq"`.
pub fn dlq(name: &str) -> String {
    format!("{name}{DLQ_SUFFIX}")
}

/// The full topic names of one installation: every base name with the same prefix.
///
/// `Topics::default()` has no prefix, which is what production uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topic names starting with `prefix` (e.g. `"test-4f2a-"` gives `"test-4f2a-orders"`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Topics {
            prefix: prefix.into(),
        }
    }

    /// The prefix put in front of every base name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The full name of `topic`: the prefix followed by its base name.
    pub fn name(&self, topic: Topic) -> String {
        format!("{}{}", self.prefix, topic.base_name())
    }

    /// The full name of `topic`'s dead-letter topic.
    pub fn dlq(&self, topic: Topic) -> String {
        dlq(&self.name(topic))
    }

    /// Every topic and its dead-letter topic, by full name: what an installation must create.
    pub fn all(&self) -> Vec<String> {
        Topic::ALL
            .into_iter()
            .flat_map(|t| [self.name(t), self.dlq(t)])
            .collect()
    }

    /// Which topic a full name is, if it is one of ours (dead-letter topics are not).
    pub fn topic_of(&self, full_name: &str) -> Option<Topic> {
        full_name
            .strip_prefix(self.prefix.as_str())
            .and_then(Topic::from_base_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_topics_have_bare_names() {
        let topics = Topics::default();
        assert_eq!(topics.name(Topic::Orders), "orders");
        assert_eq!(topics.dlq(Topic::Orders), "orders.dlq");
    }

    #[test]
    fn a_prefix_goes_in_front_of_every_name_including_dead_letter_topics() {
        let topics = Topics::new("t1-");
        assert_eq!(topics.name(Topic::Payments), "t1-payments");
        assert_eq!(dlq(&topics.name(Topic::Payments)), "t1-payments.dlq");
        assert_eq!(
            topics.all(),
            [
                "t1-users",
                "t1-users.dlq",
                "t1-catalog",
                "t1-catalog.dlq",
                "t1-inventory",
                "t1-inventory.dlq",
                "t1-orders",
                "t1-orders.dlq",
                "t1-payments",
                "t1-payments.dlq",
            ]
        );
    }

    #[test]
    fn full_names_map_back_to_topics() {
        let topics = Topics::new("x-");
        assert_eq!(topics.topic_of("x-inventory"), Some(Topic::Inventory));
        assert_eq!(topics.topic_of("inventory"), None);
        assert_eq!(topics.topic_of("x-inventory.dlq"), None);
    }
}
