//! How long each order's saga took, read back from the orders topic (`order.created` to
//! `order.confirmed` or `order.cancelled`, by the events' own `occurred_at`), and the
//! percentiles of such figures.

use std::collections::HashMap;
use std::time::Duration;

use eventmart_events::{Event, Topic};
use eventmart_runtime::testing::topics::read_all;
use uuid::Uuid;

use crate::System;

/// When each order was created, confirmed and ended (epoch milliseconds).
#[derive(Debug, Default)]
pub struct Flows {
    created: HashMap<Uuid, i64>,
    confirmed: HashMap<Uuid, i64>,
    ended: HashMap<Uuid, i64>,
}

impl Flows {
    /// Waits until every order of `placed` has ended (up to `deadline` each), then reads the
    /// orders topic.
    pub async fn read(
        system: &System,
        placed: &[Uuid],
        deadline: Duration,
    ) -> anyhow::Result<Self> {
        for order in placed {
            system.wait_final(*order, deadline).await?;
        }
        let topic = system.topics.name(Topic::Orders);
        let records = read_all(
            &system.broker.bootstrap,
            &system.registry.url,
            &topic,
            Duration::from_secs(2),
        )
        .await?;
        let mut flows = Self::default();
        for record in records {
            let at = record.envelope.occurred_at.timestamp_millis();
            match record.event {
                Event::OrderCreated(e) => {
                    flows.created.insert(e.order_id, at);
                }
                Event::OrderConfirmed(e) => {
                    flows.confirmed.insert(e.order_id, at);
                    flows.ended.insert(e.order_id, at);
                }
                Event::OrderCancelled(e) => {
                    flows.ended.insert(e.order_id, at);
                }
                _ => {}
            }
        }
        Ok(flows)
    }

    /// Milliseconds from the first creation to the last end among `orders`.
    pub fn span_ms(&self, orders: &[Uuid]) -> f64 {
        let first = orders.iter().filter_map(|o| self.created.get(o)).min();
        let last = orders.iter().filter_map(|o| self.ended.get(o)).max();
        match (first, last) {
            (Some(first), Some(last)) => (last - first).max(1) as f64,
            _ => f64::NAN,
        }
    }

    /// Milliseconds from creation to confirmation of each confirmed order of `orders`.
    pub fn confirmed(&self, orders: &[Uuid]) -> Vec<f64> {
        Self::between(&self.created, &self.confirmed, orders)
    }

    /// Milliseconds from creation to the end, confirmed or cancelled, of each of `orders`.
    pub fn ended(&self, orders: &[Uuid]) -> Vec<f64> {
        Self::between(&self.created, &self.ended, orders)
    }

    fn between(from: &HashMap<Uuid, i64>, to: &HashMap<Uuid, i64>, orders: &[Uuid]) -> Vec<f64> {
        orders
            .iter()
            .filter_map(|o| Some((to.get(o)? - from.get(o)?) as f64))
            .collect()
    }
}

/// Sorted samples, in milliseconds.
#[derive(Debug, Clone)]
pub struct Percentiles(Vec<f64>);

impl Percentiles {
    /// The samples, sorted.
    pub fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self(samples)
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `percent`th percentile (nearest rank); NaN without samples.
    pub fn p(&self, percent: usize) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let index = (self.0.len() * percent).div_ceil(100).saturating_sub(1);
        self.0[index.min(self.0.len() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let p = Percentiles::of((1..=100).rev().map(f64::from).collect());
        assert_eq!((p.p(50), p.p(99), p.p(100)), (50.0, 99.0, 100.0));
        assert!(Percentiles::of(vec![]).p(50).is_nan());
    }
}
