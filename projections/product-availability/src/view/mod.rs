//! Product availability's model and rules, pure: what a product looks like to readers
//! ([`Availability`]), what each catalog event says about it ([`catalog_change`]), what each
//! `inventory.updated` does to its stock ([`stock::apply`]), and how a product changes
//! ([`Availability::fold`]).
//!
//! The topics are not ordered among each other, and the view must end the same whatever
//! the order events arrive in:
//!
//! - the stock figures are sums of moves, each move recorded once by event id, so they do
//!   not depend on order;
//! - the name and SKU come from the latest `product.created` and the price from the latest
//!   of `product.created` and `product.price_changed`, latest by (`occurred_at`, event id):
//!   an older event arriving late changes nothing;
//! - an `inventory.updated` may arrive before its product's `product.created`: the product
//!   then has its figures and no catalog fields until `product.created` fills them;
//! - `updated_at` is the latest `occurred_at` of the events applied to the product, never
//!   the clock.
//!
//! Not here: SQL (`store`) and HTTP (`api`).

pub mod stock;

use chrono::{DateTime, Utc};
use eventmart_events::{Envelope, Event, Money};
use uuid::Uuid;

pub use self::stock::{Counts, Refused, Reservation, ReservationStatus, StockChange};

/// What the latest `product.created` says about a product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// The merchant's product code.
    pub sku: String,
    /// The display name.
    pub name: String,
    /// The event's `occurred_at`.
    pub at: DateTime<Utc>,
    /// The event.
    pub event_id: Uuid,
}

/// A product's unit price, with the event that set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    /// The unit price.
    pub money: Money,
    /// The event's `occurred_at`.
    pub at: DateTime<Utc>,
    /// The event.
    pub event_id: Uuid,
}

/// One product as readers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Availability {
    /// The product.
    pub product_id: Uuid,
    /// Its SKU and name; `None` until a `product.created` has arrived.
    pub listing: Option<Listing>,
    /// Its current price; `None` until a catalog event has arrived.
    pub price: Option<Price>,
    /// Its stock figures.
    pub counts: Counts,
    /// The latest `occurred_at` of the events applied to it.
    pub updated_at: DateTime<Utc>,
}

/// What one event changes in a product's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `product.created`: its SKU, name and price.
    Listed {
        /// The SKU and name.
        listing: Listing,
        /// The price it was created with.
        price: Price,
    },
    /// `product.price_changed`.
    Priced(Price),
    /// An `inventory.updated`: what the product's figures move by.
    Moved(Counts),
}

impl Availability {
    /// Product `product_id` (`None`: nothing known yet) after `change`, from an event that
    /// occurred at `at`; see the [module docs](self) for the rules.
    pub fn fold(
        current: Option<Availability>,
        product_id: Uuid,
        change: &Change,
        at: DateTime<Utc>,
    ) -> Self {
        let mut product = current.unwrap_or(Availability {
            product_id,
            listing: None,
            price: None,
            counts: Counts::default(),
            updated_at: at,
        });
        match change {
            Change::Listed { listing, price } => {
                let newer = product.listing.as_ref().is_none_or(|known| {
                    (listing.at, listing.event_id) > (known.at, known.event_id)
                });
                if newer {
                    product.listing = Some(listing.clone());
                }
                product.price = latest(product.price, *price);
            }
            Change::Priced(price) => product.price = latest(product.price, *price),
            Change::Moved(delta) => product.counts = product.counts.plus(*delta),
        }
        product.updated_at = product.updated_at.max(at);
        product
    }

    /// Whether its `product.created` has arrived, so that it is listed.
    pub fn is_listed(&self) -> bool {
        self.listing.is_some()
    }
}

/// The later of `known` and `candidate` by (`occurred_at`, event id).
fn latest(known: Option<Price>, candidate: Price) -> Option<Price> {
    match known {
        Some(known) if (known.at, known.event_id) >= (candidate.at, candidate.event_id) => {
            Some(known)
        }
        _ => Some(candidate),
    }
}

/// Whether a product has units to sell now, as `?availability=` filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stocked {
    /// `in_stock`: some units available.
    InStock,
    /// `out_of_stock`: none available.
    OutOfStock,
}

/// A value of `availability` that is neither `in_stock` nor `out_of_stock`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be in_stock or out_of_stock, got {0:?}")]
pub struct InvalidStocked(pub String);

impl Stocked {
    /// Both values.
    pub const ALL: [Stocked; 2] = [Stocked::InStock, Stocked::OutOfStock];

    /// The API's name: `in_stock` or `out_of_stock`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stocked::InStock => "in_stock",
            Stocked::OutOfStock => "out_of_stock",
        }
    }

    /// Reads the API's name.
    pub fn parse(text: &str) -> Result<Self, InvalidStocked> {
        Stocked::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| InvalidStocked(text.to_owned()))
    }

    /// Whether `counts` fit: in stock means at least one unit available.
    pub fn fits(self, counts: &Counts) -> bool {
        (counts.available > 0) == (self == Stocked::InStock)
    }
}

/// The product a catalog event is about and what it changes; `None` for any other event.
pub fn catalog_change(event: &Event, envelope: &Envelope) -> Option<(Uuid, Change)> {
    let price = |money: Money| Price {
        money,
        at: envelope.occurred_at,
        event_id: envelope.event_id,
    };
    match event {
        Event::ProductCreated(e) => Some((
            e.product_id,
            Change::Listed {
                listing: Listing {
                    sku: e.sku.clone(),
                    name: e.name.clone(),
                    at: envelope.occurred_at,
                    event_id: envelope.event_id,
                },
                price: price(e.price),
            },
        )),
        Event::ProductPriceChanged(e) => Some((e.product_id, Change::Priced(price(e.price)))),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
