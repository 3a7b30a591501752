//! The sales model, pure: what an `orders` event says about an order's sale ([`change_of`]),
//! how that changes what is known of the order ([`OrderSale::fold`]), and what a confirmed
//! order adds to the figures ([`OrderSale::sale`]).
//!
//! An order is a sale once both its `order.created` (what was ordered, at what prices) and its
//! `order.confirmed` (when) have arrived, in either order: the topics are not ordered among
//! each other, and a replay must count the same. The rules that make the figures the same
//! whatever order events arrive in:
//!
//! - what is known of an order only grows: the first `order.created` fills in its lines, the
//!   first decision (`order.confirmed` or `order.cancelled`) settles it, and nothing arriving
//!   later changes either;
//! - the order is counted exactly once, when the second of the two halves arrives; the
//!   figures are sums, so the order orders are counted in does not matter;
//! - a cancelled order is never a sale, even if a confirmation follows (the orders service
//!   emits one decision per order; should its topic hold two, typed in by hand, the first one
//!   wins, and as both are on the order's partition every replay sees the same first);
//! - the day of a sale is the UTC date of the confirmation's `confirmed_at`, never the clock.
//!
//! Not here: SQL (`store`) and HTTP (`api`).

mod day;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use eventmart_events::orders::OrderLine;
use eventmart_events::{Currency, Event, Money};
use uuid::Uuid;

pub use self::day::{Day, DayOutOfRange, InvalidDay};

/// What `order.created` says about an order that sales need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// What was ordered, at the prices of the moment.
    pub lines: Vec<OrderLine>,
    /// What the order costs.
    pub total: Money,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
}

/// How an order was settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Paid for at `at`: a sale.
    Confirmed {
        /// The confirmation's `confirmed_at`.
        at: DateTime<Utc>,
    },
    /// Cancelled at `at`: no sale.
    Cancelled {
        /// The cancellation's `cancelled_at`.
        at: DateTime<Utc>,
    },
}

impl Decision {
    /// The name the database uses: `CONFIRMED` or `CANCELLED`.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Confirmed { .. } => "CONFIRMED",
            Decision::Cancelled { .. } => "CANCELLED",
        }
    }

    /// When the order was settled.
    pub fn at(self) -> DateTime<Utc> {
        match self {
            Decision::Confirmed { at } | Decision::Cancelled { at } => at,
        }
    }
}

/// What an `orders` event says about an order's sale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// `order.created`.
    Placed(Placed),
    /// `order.confirmed` or `order.cancelled`.
    Decided(Decision),
}

/// The order `event` is about and what it says; `None` for events of other topics.
pub fn change_of(event: &Event) -> Option<(Uuid, Change)> {
    match event {
        Event::OrderCreated(e) => Some((
            e.order_id,
            Change::Placed(Placed {
                lines: e.lines.clone(),
                total: e.total,
                created_at: e.created_at,
            }),
        )),
        Event::OrderConfirmed(e) => Some((
            e.order_id,
            Change::Decided(Decision::Confirmed { at: e.confirmed_at }),
        )),
        Event::OrderCancelled(e) => Some((
            e.order_id,
            Change::Decided(Decision::Cancelled { at: e.cancelled_at }),
        )),
        _ => None,
    }
}

/// What is known of one order's sale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSale {
    /// The order.
    pub order_id: Uuid,
    /// What `order.created` said; `None` until it has arrived.
    pub placed: Option<Placed>,
    /// How it was settled; `None` while pending.
    pub decision: Option<Decision>,
}

/// What a confirmed order sold of one product in one currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// The product.
    pub product_id: Uuid,
    /// The currency of the lines' unit prices.
    pub currency: Currency,
    /// The sum of the lines' quantities.
    pub units: i64,
    /// The sum of the lines' quantity × unit price, in minor units.
    pub revenue_cents: i64,
}

/// What a confirmed order adds to the figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sale {
    /// The UTC date of the confirmation.
    pub day: Day,
    /// One item per product and currency, by product id then currency.
    pub items: Vec<Item>,
}

/// Why a confirmed order cannot be counted; the same whenever it is replayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Uncountable {
    /// The confirmation's date has no `YYYY-MM-DD` day.
    #[error(transparent)]
    Day(#[from] DayOutOfRange),
    /// A line's or a product's revenue does not fit in 64 bits.
    #[error("the revenue of product {0} overflows")]
    Overflow(Uuid),
}

impl OrderSale {
    /// What is known of order `order_id` (`None`: nothing yet) after `change`; see the
    /// [module docs](self) for the rules.
    pub fn fold(known: Option<OrderSale>, order_id: Uuid, change: &Change) -> OrderSale {
        let mut known = known.unwrap_or(OrderSale {
            order_id,
            placed: None,
            decision: None,
        });
        match change {
            Change::Placed(placed) if known.placed.is_none() => {
                known.placed = Some(placed.clone());
            }
            Change::Decided(decision) if known.decision.is_none() => {
                known.decision = Some(*decision);
            }
            _ => {}
        }
        known
    }

    /// Whether the order is a sale: placed and confirmed.
    pub fn is_counted(&self) -> bool {
        self.placed.is_some() && matches!(self.decision, Some(Decision::Confirmed { .. }))
    }

    /// What the order adds to the figures, once it is a sale.
    pub fn sale(&self) -> Result<Option<Sale>, Uncountable> {
        let (Some(placed), Some(Decision::Confirmed { at })) = (&self.placed, self.decision) else {
            return Ok(None);
        };
        let day = Day::of(at)?;
        let mut items: BTreeMap<(Uuid, Currency), (i64, i64)> = BTreeMap::new();
        for line in &placed.lines {
            let overflow = || Uncountable::Overflow(line.product_id);
            let quantity = i64::from(line.quantity);
            let revenue = quantity
                .checked_mul(line.unit_price.cents)
                .ok_or_else(overflow)?;
            let (units, cents) = items
                .entry((line.product_id, line.unit_price.currency))
                .or_default();
            *units += quantity;
            *cents = cents.checked_add(revenue).ok_or_else(overflow)?;
        }
        let items = items
            .into_iter()
            .map(|((product_id, currency), (units, revenue_cents))| Item {
                product_id,
                currency,
                units,
                revenue_cents,
            })
            .collect();
        Ok(Some(Sale { day, items }))
    }
}

#[cfg(test)]
mod tests;
