//! The catalog domain: the rules of creating a product and changing its price. Pure: no I/O.
//!
//! - [`values`]: what a valid SKU, product name and price are.
//! - here: the product's state, the commands, and the [`Catalog`] decider.
//!
//! A SKU belongs to one product at most. Who holds it is a fact of storage (a unique claim),
//! so the caller claims the SKU first and hands the holder to [`Catalog::decide`] in the
//! command; the rule of what a taken SKU means lives here.
//!
//! Not here: HTTP (see `api`) and reading the topic (see `reactions`).

use chrono::{DateTime, Utc};
use eventmart_events::catalog::{ProductCreated, ProductPriceChanged};
use eventmart_events::{Event, Money};
use eventmart_runtime::decider::Decider;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod values;

pub use values::{InvalidPrice, InvalidValue, Price, ProductName, Sku};

/// The state kind of a product (id: the product id).
pub const PRODUCT: &str = "product";

/// The unique-claim kind of a SKU (value: its [`Sku::normalise`]d form).
pub const SKU: &str = "sku";

/// A product, as stored and as `GET /products/{product_id}` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The product's id.
    pub product_id: Uuid,
    /// Its SKU (normalised, unless it came from outside that way).
    pub sku: String,
    /// Its display name.
    pub name: String,
    /// Its unit price.
    pub price: Money,
    /// When it was created.
    #[serde(with = "eventmart_events::timestamp")]
    pub created_at: DateTime<Utc>,
}

/// Add a product to the catalog.
#[derive(Clone, Debug)]
pub struct CreateProduct {
    /// The new product's id.
    pub product_id: Uuid,
    /// Its SKU.
    pub sku: Sku,
    /// Its name.
    pub name: ProductName,
    /// Its unit price.
    pub price: Price,
    /// Who holds `sku`'s claim, if anyone (the new product itself once claimed).
    pub sku_holder: Option<Uuid>,
    /// Now.
    pub at: DateTime<Utc>,
}

/// Set a product's unit price.
#[derive(Clone, Debug)]
pub struct ChangePrice {
    /// The product.
    pub product_id: Uuid,
    /// The new price (in any currency).
    pub price: Price,
    /// Now.
    pub at: DateTime<Utc>,
}

/// What the catalog domain is asked to do.
#[derive(Clone, Debug)]
pub enum Command {
    /// Add a product.
    Create(CreateProduct),
    /// Change a price.
    ChangePrice(ChangePrice),
    /// Record an event someone else put on the catalog topic (with kcat): a fact, accepted
    /// as it is unless it contradicts what is known.
    Record(Event),
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The SKU belongs to another product: choose another one.
    #[error("SKU {sku} is already taken by another product")]
    SkuTaken {
        /// The SKU.
        sku: String,
    },
    /// No such product: create it first.
    #[error("product {0} does not exist")]
    NotFound(Uuid),
    /// A product with this id exists already, with other details.
    #[error("product {0} already exists with other details")]
    AlreadyCreated(Uuid),
    /// An event of another topic was recorded on the catalog topic.
    #[error(
        "{0} is not an event of the catalog topic (only product.created and \
         product.price_changed are)"
    )]
    ForeignEvent(&'static str),
}

/// The catalog decider; its state is one product, `None` before it is created.
#[derive(Clone, Copy, Debug, Default)]
pub struct Catalog;

impl Catalog {
    fn create(
        state: Option<&Product>,
        command: &CreateProduct,
    ) -> Result<Vec<Event>, CatalogError> {
        if state.is_some() {
            return Err(CatalogError::AlreadyCreated(command.product_id));
        }
        if command
            .sku_holder
            .is_some_and(|holder| holder != command.product_id)
        {
            return Err(CatalogError::SkuTaken {
                sku: command.sku.as_str().to_owned(),
            });
        }
        Ok(vec![
            ProductCreated {
                product_id: command.product_id,
                sku: command.sku.as_str().to_owned(),
                name: command.name.as_str().to_owned(),
                price: command.price.money(),
                created_at: command.at,
            }
            .into(),
        ])
    }

    fn change_price(
        state: Option<&Product>,
        command: &ChangePrice,
    ) -> Result<Vec<Event>, CatalogError> {
        let product = state.ok_or(CatalogError::NotFound(command.product_id))?;
        if product.price == command.price.money() {
            return Ok(Vec::new());
        }
        Ok(vec![
            ProductPriceChanged {
                product_id: product.product_id,
                price: command.price.money(),
                changed_at: command.at,
            }
            .into(),
        ])
    }

    fn record(state: Option<&Product>, event: &Event) -> Result<Vec<Event>, CatalogError> {
        match (event, state) {
            (Event::ProductCreated(_), None) => Ok(vec![event.clone()]),
            (Event::ProductCreated(created), Some(product)) => {
                if *product == Self::created(created) {
                    Ok(Vec::new())
                } else {
                    Err(CatalogError::AlreadyCreated(created.product_id))
                }
            }
            (Event::ProductPriceChanged(changed), None) => {
                Err(CatalogError::NotFound(changed.product_id))
            }
            (Event::ProductPriceChanged(_), Some(_)) => Ok(vec![event.clone()]),
            (other, _) => Err(CatalogError::ForeignEvent(other.event_type())),
        }
    }

    fn created(event: &ProductCreated) -> Product {
        Product {
            product_id: event.product_id,
            sku: event.sku.clone(),
            name: event.name.clone(),
            price: event.price,
            created_at: event.created_at,
        }
    }
}

impl Decider for Catalog {
    type State = Option<Product>;
    type Command = Command;
    type Event = Event;
    type Error = CatalogError;

    fn decide(
        &self,
        state: &Option<Product>,
        command: &Command,
    ) -> Result<Vec<Event>, CatalogError> {
        match command {
            Command::Create(create) => Self::create(state.as_ref(), create),
            Command::ChangePrice(change) => Self::change_price(state.as_ref(), change),
            Command::Record(event) => Self::record(state.as_ref(), event),
        }
    }

    fn evolve(&self, state: Option<Product>, event: &Event) -> Option<Product> {
        match event {
            Event::ProductCreated(created) => Some(Self::created(created)),
            Event::ProductPriceChanged(changed) => state.map(|product| Product {
                price: changed.price,
                ..product
            }),
            _ => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventmart_events::{Currency, samples};
    use eventmart_runtime::testing::Scenario;

    fn at() -> DateTime<Utc> {
        samples::at()
    }

    fn tee() -> Uuid {
        Uuid::from_u128(1)
    }

    fn mug() -> Uuid {
        Uuid::from_u128(2)
    }

    fn eur(cents: i64) -> Money {
        Money::new(cents, Currency::EUR)
    }

    fn created(product_id: Uuid, sku: &str, price: Money) -> Event {
        ProductCreated {
            product_id,
            sku: sku.to_owned(),
            name: "T-shirt".to_owned(),
            price,
            created_at: at(),
        }
        .into()
    }

    fn price_changed(price: Money) -> Event {
        ProductPriceChanged {
            product_id: tee(),
            price,
            changed_at: at(),
        }
        .into()
    }

    fn create(sku_holder: Option<Uuid>) -> Command {
        Command::Create(CreateProduct {
            product_id: tee(),
            sku: Sku::parse(" tee-m ").unwrap(),
            name: ProductName::parse(" T-shirt ").unwrap(),
            price: Price::parse(1999, "EUR").unwrap(),
            sku_holder,
            at: at(),
        })
    }

    fn change_price(cents: i64, currency: &str) -> Command {
        Command::ChangePrice(ChangePrice {
            product_id: tee(),
            price: Price::parse(cents, currency).unwrap(),
            at: at(),
        })
    }

    #[test]
    fn creating_a_product_with_a_free_sku_creates_it() {
        Scenario::with(Catalog)
            .when(create(Some(tee())))
            .then_expect_events([created(tee(), "TEE-M", eur(1999))]);
    }

    #[test]
    fn creating_a_product_with_a_sku_another_product_holds_is_refused() {
        Scenario::with(Catalog)
            .when(create(Some(mug())))
            .then_expect_error(CatalogError::SkuTaken {
                sku: "TEE-M".into(),
            });
    }

    #[test]
    fn creating_an_existing_product_is_refused() {
        Scenario::with(Catalog)
            .given([created(tee(), "TEE-M", eur(1999))])
            .when(create(Some(tee())))
            .then_expect_error(CatalogError::AlreadyCreated(tee()));
    }

    #[test]
    fn changing_the_price_records_the_new_price() {
        Scenario::with(Catalog)
            .given([created(tee(), "TEE-M", eur(1999))])
            .when(change_price(2499, "EUR"))
            .then_expect_events([price_changed(eur(2499))]);
    }

    #[test]
    fn changing_the_currency_is_a_price_change() {
        Scenario::with(Catalog)
            .given([created(tee(), "TEE-M", eur(1999))])
            .when(change_price(1999, "USD"))
            .then_expect_events([price_changed(Money::new(1999, Currency::USD))]);
    }

    #[test]
    fn setting_the_same_price_records_nothing() {
        Scenario::with(Catalog)
            .given([created(tee(), "TEE-M", eur(1999)), price_changed(eur(2499))])
            .when(change_price(2499, "EUR"))
            .then_expect_events([]);
    }

    #[test]
    fn changing_the_price_of_an_unknown_product_is_refused() {
        Scenario::with(Catalog)
            .when(change_price(2499, "EUR"))
            .then_expect_error(CatalogError::NotFound(tee()));
    }

    #[test]
    fn a_product_created_outside_is_recorded_as_it_is() {
        let outside = created(tee(), "tee-m", eur(1999));
        Scenario::with(Catalog)
            .when(Command::Record(outside.clone()))
            .then_expect_events([outside]);
    }

    #[test]
    fn a_product_created_outside_seen_twice_is_recorded_once() {
        let outside = created(tee(), "TEE-M", eur(1999));
        Scenario::with(Catalog)
            .given([outside.clone()])
            .when(Command::Record(outside))
            .then_expect_events([]);
    }

    #[test]
    fn a_creation_from_outside_that_contradicts_the_product_is_refused() {
        Scenario::with(Catalog)
            .given([created(tee(), "TEE-M", eur(1999))])
            .when(Command::Record(created(tee(), "TEE-L", eur(1999))))
            .then_expect_error(CatalogError::AlreadyCreated(tee()));
    }

    #[test]
    fn a_price_change_from_outside_is_recorded_for_a_known_product_only() {
        Scenario::with(Catalog)
            .given([created(tee(), "TEE-M", eur(1999))])
            .when(Command::Record(price_changed(eur(999))))
            .then_expect_events([price_changed(eur(999))]);
        Scenario::with(Catalog)
            .when(Command::Record(price_changed(eur(999))))
            .then_expect_error(CatalogError::NotFound(tee()));
    }

    #[test]
    fn an_event_of_another_topic_is_refused_naming_its_type() {
        Scenario::with(Catalog)
            .when(Command::Record(samples::order_created()))
            .then_expect_error(CatalogError::ForeignEvent("order.created"));
    }

    #[test]
    fn a_price_change_changes_only_the_price() {
        let product =
            Catalog.replay(&[created(tee(), "TEE-M", eur(1999)), price_changed(eur(2499))]);
        assert_eq!(
            product,
            Some(Product {
                product_id: tee(),
                sku: "TEE-M".into(),
                name: "T-shirt".into(),
                price: eur(2499),
                created_at: at(),
            })
        );
    }
}
