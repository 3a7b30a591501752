//! Events of the `catalog` topic, keyed by product id. Schemas: `schemas/catalog/*.avsc`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Money;

/// `product.created`: a product was added to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCreated {
    /// The new product's id; the aggregate id.
    pub product_id: Uuid,
    /// The merchant's product code.
    pub sku: String,
    /// The product's display name.
    pub name: String,
    /// The unit price.
    pub price: Money,
    /// When the product was created.
    #[serde(with = "crate::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl ProductCreated {
    /// The aggregate this event belongs to: the product.
    pub fn aggregate_id(&self) -> Uuid {
        self.product_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.created_at
    }
}

/// `product.price_changed`: a product's unit price changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductPriceChanged {
    /// The product's id; the aggregate id.
    pub product_id: Uuid,
    /// The new unit price.
    pub price: Money,
    /// When the price changed.
    #[serde(with = "crate::timestamp")]
    pub changed_at: DateTime<Utc>,
}

impl ProductPriceChanged {
    /// The aggregate this event belongs to: the product.
    pub fn aggregate_id(&self) -> Uuid {
        self.product_id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        self.changed_at
    }
}
