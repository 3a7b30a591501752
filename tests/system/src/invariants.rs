//! The saga's invariants, checked from what the services show over HTTP and what the
//! payments topic holds.
//!
//! - every order ended: CONFIRMED or CANCELLED;
//! - stock conservation per product: received = available + reserved + sold, none negative,
//!   nothing left reserved, and sold = the units of the confirmed orders;
//! - no order charged twice (distinct `payment.completed` events per order on the topic);
//! - every charge of a cancelled order refunded, and no confirmed order refunded;
//! - the confirmed orders' totals equal what payments kept (charged minus refunded) for the
//!   shop's orders (payment events typed in for orders that never existed are not counted).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use eventmart_events::{Event, Topic};
use eventmart_runtime::testing::topics::read_all;
use serde_json::Value;

use crate::System;

/// What the services hold once the system is quiet, and the counts a report prints.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Orders by status.
    pub by_status: BTreeMap<String, u64>,
    /// Cancelled orders by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// `payment.completed` events on the topic (distinct ids).
    pub charges: u64,
    /// `payment.refunded` events on the topic (distinct ids).
    pub refunds: u64,
    /// `payment.failed` events on the topic (distinct ids).
    pub declines: u64,
    /// Units received over all products.
    pub received: i64,
    /// Units sold over all products.
    pub sold: i64,
    /// Sum of the confirmed orders' totals, in cents.
    pub confirmed_cents: i64,
    /// Sum charged minus sum refunded, in cents.
    pub kept_cents: i64,
    /// Every broken invariant, described.
    pub violations: Violations,
}

/// Broken invariants, one line each.
#[derive(Debug, Default)]
pub struct Violations(pub Vec<String>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.0 {
            writeln!(f, "- {line}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "orders {:?}, cancelled {:?}, charges {}, refunds {}, declines {}, units received {} \
             sold {}, confirmed {} cents, kept {} cents, violations {}",
            self.by_status,
            self.by_reason,
            self.charges,
            self.refunds,
            self.declines,
            self.received,
            self.sold,
            self.confirmed_cents,
            self.kept_cents,
            self.violations.0.len()
        )
    }
}

impl Ledger {
    /// Reads everything back from `system` and checks the invariants.
    pub async fn read(system: &System) -> anyhow::Result<Self> {
        let mut ledger = Ledger::default();
        let orders = system.all("orders", "/orders").await?;
        let stock = system.all("inventory", "/stock").await?;
        let payments: BTreeMap<String, Value> = system
            .all("payments", "/payments")
            .await?
            .into_iter()
            .filter_map(|p| Some((p["order_id"].as_str()?.to_owned(), p)))
            .collect();
        let topic = system.topics.name(Topic::Payments);
        let records = read_all(
            &system.broker.bootstrap,
            &system.registry.url,
            &topic,
            Duration::from_secs(2),
        )
        .await?;
        let mut seen = HashSet::new();
        let mut charged: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        let mut refunded: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for record in records {
            if !seen.insert(record.envelope.event_id) {
                continue;
            }
            match record.event {
                Event::PaymentCompleted(e) => {
                    ledger.charges += 1;
                    let entry = charged.entry(e.order_id.to_string()).or_default();
                    entry.0 += 1;
                    entry.1 += e.amount.cents;
                }
                Event::PaymentRefunded(e) => {
                    ledger.refunds += 1;
                    let entry = refunded.entry(e.order_id.to_string()).or_default();
                    entry.0 += 1;
                    entry.1 += e.amount.cents;
                }
                Event::PaymentFailed(_) => ledger.declines += 1,
                _ => {}
            }
        }
        let violations = &mut ledger.violations.0;
        let mut sold_by_orders: BTreeMap<String, i64> = BTreeMap::new();
        for order in &orders {
            let id = order["order_id"].as_str().unwrap_or_default().to_owned();
            let status = order["status"].as_str().unwrap_or_default().to_owned();
            *ledger.by_status.entry(status.clone()).or_default() += 1;
            let (charges, charged_cents) = charged.get(&id).copied().unwrap_or_default();
            let (refunds, refunded_cents) = refunded.get(&id).copied().unwrap_or_default();
            if charges > 1 {
                violations.push(format!("order {id} charged {charges} times"));
            }
            if refunds > charges {
                violations.push(format!(
                    "order {id} refunded {refunds} times for {charges} charges"
                ));
            }
            match status.as_str() {
                "CONFIRMED" => {
                    let total = order["total"]["cents"].as_i64().unwrap_or_default();
                    ledger.confirmed_cents += total;
                    if charges != 1 || refunds != 0 || charged_cents != total {
                        violations.push(format!(
                            "confirmed order {id} of {total} cents: {charges} charges of \
                             {charged_cents}, {refunds} refunds"
                        ));
                    }
                    for line in order["lines"].as_array().into_iter().flatten() {
                        let product = line["product_id"].as_str().unwrap_or_default().to_owned();
                        *sold_by_orders.entry(product).or_default() +=
                            line["quantity"].as_i64().unwrap_or_default();
                    }
                }
                "CANCELLED" => {
                    let reason = order["reason"].as_str().unwrap_or("none").to_owned();
                    *ledger.by_reason.entry(reason).or_default() += 1;
                    if charges != refunds || charged_cents != refunded_cents {
                        violations.push(format!(
                            "cancelled order {id}: {charges} charges of {charged_cents} cents, \
                             {refunds} refunds of {refunded_cents}"
                        ));
                    }
                }
                other => violations.push(format!("order {id} ended {other}")),
            }
            if let Some(payment) = payments.get(&id)
                && status == "CONFIRMED"
                && payment["status"] != "COMPLETED"
            {
                violations.push(format!(
                    "confirmed order {id} has payment status {}",
                    payment["status"]
                ));
            }
        }
        // What was kept for the orders the shop has: a payment event typed in for an order
        // that never existed (a stray) is no charge of the shop's.
        let known: HashSet<&str> = orders
            .iter()
            .filter_map(|o| o["order_id"].as_str())
            .collect();
        let kept = |by_order: &BTreeMap<String, (u64, i64)>| -> i64 {
            by_order
                .iter()
                .filter(|(id, _)| known.contains(id.as_str()))
                .map(|(_, c)| c.1)
                .sum()
        };
        ledger.kept_cents = kept(&charged) - kept(&refunded);
        if ledger.kept_cents != ledger.confirmed_cents {
            violations.push(format!(
                "payments kept {} cents, confirmed orders total {}",
                ledger.kept_cents, ledger.confirmed_cents
            ));
        }
        for item in &stock {
            let product = item["product_id"].as_str().unwrap_or_default().to_owned();
            let field = |name: &str| item[name].as_i64().unwrap_or(i64::MIN);
            let (received, available, reserved, sold) = (
                field("received"),
                field("available"),
                field("reserved"),
                field("sold"),
            );
            ledger.received += received;
            ledger.sold += sold;
            if received != available + reserved + sold {
                violations.push(format!(
                    "product {product}: received {received} != available {available} + \
                     reserved {reserved} + sold {sold}"
                ));
            }
            if available < 0 || reserved != 0 || sold < 0 {
                violations.push(format!(
                    "product {product}: available {available}, reserved {reserved}, sold {sold} \
                     once every order ended"
                ));
            }
            let expected_sold = sold_by_orders.remove(&product).unwrap_or_default();
            if sold != expected_sold {
                violations.push(format!(
                    "product {product}: sold {sold}, confirmed orders hold {expected_sold}"
                ));
            }
        }
        for (product, units) in sold_by_orders {
            violations.push(format!(
                "product {product} is unknown to inventory but confirmed orders hold {units}"
            ));
        }
        Ok(ledger)
    }
}
