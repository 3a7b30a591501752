//! What orders keeps of other services' facts, learnt from their events: which users exist
//! (from `users`) and what each product costs (from `catalog`). Orders never asks those
//! services; an order placed before a fact has arrived is refused as unknown.
//!
//! Not here: stock (inventory's) or payments (payments').

use eventmart_events::{Event, Money};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A registered user, as far as orders needs to know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub user_id: Uuid,
    /// Their current email address.
    pub email: String,
}

/// A product of the catalog and its current unit price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The product's id.
    pub product_id: Uuid,
    /// The merchant's product code.
    pub sku: String,
    /// Its display name.
    pub name: String,
    /// Its current unit price.
    pub price: Money,
}

/// An event that changes a replica that does not exist: its creation never arrived, and as
/// it would have come first on the same partition, it never will.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} for {kind} {id}, which was never created")]
pub struct ReplicaError {
    /// The event's type.
    pub event_type: &'static str,
    /// `user` or `product`.
    pub kind: &'static str,
    /// The id it names.
    pub id: Uuid,
}

impl User {
    /// The user after `event` (a `user.*` event; others leave it as it is).
    pub fn fold(known: Option<User>, event: &Event) -> Result<Option<User>, ReplicaError> {
        match (known, event) {
            (_, Event::UserRegistered(registered)) => Ok(Some(User {
                user_id: registered.user_id,
                email: registered.email.clone(),
            })),
            (Some(mut user), Event::UserUpdated(updated)) => {
                if let Some(email) = &updated.email {
                    user.email.clone_from(email);
                }
                Ok(Some(user))
            }
            (None, Event::UserUpdated(updated)) => Err(ReplicaError {
                event_type: event.event_type(),
                kind: "user",
                id: updated.user_id,
            }),
            (known, _) => Ok(known),
        }
    }
}

impl Product {
    /// The product after `event` (a `product.*` event; others leave it as it is).
    pub fn fold(known: Option<Product>, event: &Event) -> Result<Option<Product>, ReplicaError> {
        match (known, event) {
            (_, Event::ProductCreated(created)) => Ok(Some(Product {
                product_id: created.product_id,
                sku: created.sku.clone(),
                name: created.name.clone(),
                price: created.price,
            })),
            (Some(mut product), Event::ProductPriceChanged(changed)) => {
                product.price = changed.price;
                Ok(Some(product))
            }
            (None, Event::ProductPriceChanged(changed)) => Err(ReplicaError {
                event_type: event.event_type(),
                kind: "product",
                id: changed.product_id,
            }),
            (known, _) => Ok(known),
        }
    }
}

#[cfg(test)]
mod tests {
    use eventmart_events::Currency;
    use eventmart_events::catalog::{ProductCreated, ProductPriceChanged};
    use eventmart_events::users::{UserRegistered, UserUpdated};

    use super::*;

    fn at() -> chrono::DateTime<chrono::Utc> {
        eventmart_events::timestamp::from_millis(1_714_564_800_123).unwrap()
    }

    fn registered(id: Uuid) -> Event {
        UserRegistered {
            user_id: id,
            email: "ada@example.com".into(),
            name: "Ada".into(),
            registered_at: at(),
        }
        .into()
    }

    fn updated(id: Uuid, email: Option<&str>) -> Event {
        UserUpdated {
            user_id: id,
            email: email.map(str::to_owned),
            name: Some("Ada L.".into()),
            updated_at: at(),
        }
        .into()
    }

    fn created(id: Uuid, cents: i64) -> Event {
        ProductCreated {
            product_id: id,
            sku: "BOOK-1".into(),
            name: "A book".into(),
            price: Money::new(cents, Currency::EUR),
            created_at: at(),
        }
        .into()
    }

    fn price_changed(id: Uuid, cents: i64) -> Event {
        ProductPriceChanged {
            product_id: id,
            price: Money::new(cents, Currency::EUR),
            changed_at: at(),
        }
        .into()
    }

    #[test]
    fn a_registered_user_becomes_known_and_follows_email_changes() {
        let id = Uuid::now_v7();
        let user = User::fold(None, &registered(id)).unwrap().unwrap();
        assert_eq!(user.email, "ada@example.com");
        let user = User::fold(Some(user), &updated(id, Some("ada@lovelace.org")))
            .unwrap()
            .unwrap();
        assert_eq!(user.email, "ada@lovelace.org");
        let same = User::fold(Some(user.clone()), &updated(id, None)).unwrap();
        assert_eq!(same, Some(user));
    }

    #[test]
    fn an_update_of_a_user_never_registered_is_refused() {
        let id = Uuid::now_v7();
        let error = User::fold(None, &updated(id, None)).unwrap_err();
        assert_eq!((error.kind, error.id), ("user", id));
        assert!(error.to_string().contains("user.updated"), "{error}");
    }

    #[test]
    fn a_created_product_is_priced_and_follows_price_changes() {
        let id = Uuid::now_v7();
        let product = Product::fold(None, &created(id, 1999)).unwrap().unwrap();
        assert_eq!(product.price.cents, 1999);
        let product = Product::fold(Some(product), &price_changed(id, 2499))
            .unwrap()
            .unwrap();
        assert_eq!(product.price.cents, 2499);
        assert_eq!(product.sku, "BOOK-1");
    }

    #[test]
    fn a_price_change_of_a_product_never_created_is_refused() {
        let id = Uuid::now_v7();
        let error = Product::fold(None, &price_changed(id, 1)).unwrap_err();
        assert_eq!((error.kind, error.id), ("product", id));
    }

    #[test]
    fn other_events_leave_replicas_alone() {
        let id = Uuid::now_v7();
        assert_eq!(User::fold(None, &created(id, 1)), Ok(None));
        assert_eq!(Product::fold(None, &registered(id)), Ok(None));
    }
}
