//! [`Event`]: every event type of the system in one enum, and the catalog generated with it.
//!
//! The list below is the only place an event type is declared: adding one means adding a line
//! here, a payload struct in its topic's module and a schema file under `schemas/`; the tests
//! refuse a build where the three disagree.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event_type::EventType;
use crate::topics::Topic;
use crate::{catalog, inventory, orders, payments, users};

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident($module:ident) = $wire:literal in $topic:ident; )*) => {
        /// Any event of the system. Serde writes it as the payload's fields plus
        /// `"event_type": "<wire name>"`.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "event_type")]
        pub enum Event {
            $(
                $(#[$doc])*
                #[serde(rename = $wire)]
                $variant($module::$variant),
            )*
        }

        impl Event {
            /// This event's type: wire name, topic, record name and schema.
            pub fn descriptor(&self) -> &'static EventType {
                match self {
                    $( Event::$variant(_) => &descriptors::$variant, )*
                }
            }

            /// The id of the aggregate the event belongs to, which is also its record key.
            pub fn aggregate_id(&self) -> String {
                match self {
                    $( Event::$variant(e) => e.aggregate_id().to_string(), )*
                }
            }

            /// When the event happened: the payload's own timestamp (`created_at`, …).
            pub fn occurred_at(&self) -> DateTime<Utc> {
                match self {
                    $( Event::$variant(e) => e.occurred_at(), )*
                }
            }

            /// The payload alone as JSON: the schema's fields, timestamps in RFC 3339.
            pub(crate) fn payload_json(&self) -> serde_json::Result<serde_json::Value> {
                match self {
                    $( Event::$variant(e) => serde_json::to_value(e), )*
                }
            }

            /// Reads the payload of an event of type `event_type` from its JSON form; errors
            /// name the field. `None` if the type has no variant (impossible for catalog
            /// entries).
            pub(crate) fn from_payload_json(
                event_type: &EventType,
                json: serde_json::Value,
            ) -> Option<Result<Event, serde_path_to_error::Error<serde_json::Error>>> {
                match event_type.name {
                    $( $wire => Some(serde_path_to_error::deserialize(json).map(Event::$variant)), )*
                    _ => None,
                }
            }
        }

        $(
            impl From<$module::$variant> for Event {
                fn from(payload: $module::$variant) -> Event {
                    Event::$variant(payload)
                }
            }
        )*

        /// One static per event type, named like its variant.
        #[allow(non_upper_case_globals)]
        mod descriptors {
            use super::*;
            $(
                pub(super) static $variant: EventType = EventType::new(
                    $wire,
                    Topic::$topic,
                    concat!("eventmart.", stringify!($module), ".", stringify!($variant)),
                    include_str!(concat!("../../../schemas/", stringify!($module), "/", $wire, ".avsc")),
                    || crate::event_type::parse_embedded(
                        concat!("eventmart.", stringify!($module), ".", stringify!($variant)),
                        include_str!(concat!("../../../schemas/", stringify!($module), "/", $wire, ".avsc")),
                    ),
                );
            )*
        }

        /// The catalog, in declaration order.
        pub(crate) static CATALOG: &[&EventType] = &[ $( &descriptors::$variant, )* ];
    };
}

events! {
    /// `user.registered` on `users`.
    UserRegistered(users) = "user.registered" in Users;
    /// `user.updated` on `users`.
    UserUpdated(users) = "user.updated" in Users;
    /// `product.created` on `catalog`.
    ProductCreated(catalog) = "product.created" in Catalog;
    /// `product.price_changed` on `catalog`.
    ProductPriceChanged(catalog) = "product.price_changed" in Catalog;
    /// `inventory.updated` on `inventory`.
    InventoryUpdated(inventory) = "inventory.updated" in Inventory;
    /// `order.created` on `orders`.
    OrderCreated(orders) = "order.created" in Orders;
    /// `order.confirmed` on `orders`.
    OrderConfirmed(orders) = "order.confirmed" in Orders;
    /// `order.cancelled` on `orders`.
    OrderCancelled(orders) = "order.cancelled" in Orders;
    /// `payment.completed` on `payments`.
    PaymentCompleted(payments) = "payment.completed" in Payments;
    /// `payment.failed` on `payments`.
    PaymentFailed(payments) = "payment.failed" in Payments;
    /// `payment.refunded` on `payments`.
    PaymentRefunded(payments) = "payment.refunded" in Payments;
}

impl Event {
    /// The dotted wire name, e.g. `"order.created"`.
    pub fn event_type(&self) -> &'static str {
        self.descriptor().name
    }

    /// The topic this event goes to.
    pub fn topic(&self) -> Topic {
        self.descriptor().topic
    }

    /// The full name of its Avro record, e.g. `"eventmart.orders.OrderCreated"`.
    pub fn record_name(&self) -> &'static str {
        self.descriptor().record_name
    }
}

#[cfg(test)]
mod tests;
