//! Whether the read models say what the services say, once the system is quiet:
//!
//! - order view: every order the orders service has, with the same status and reason;
//! - product availability: every product's received, available, reserved and sold as the
//!   inventory service counts them;
//! - sales: total revenue equal to the sum of the confirmed orders' totals;
//! - saga tracker: no saga of the shop's orders running or compensating (a stray event typed
//!   in for an order nobody placed opens one that never ends), and as many confirmed and
//!   cancelled sagas as there are confirmed and cancelled orders.

use std::time::Duration;

use eventmart_runtime::testing::wait_for;
use serde_json::Value;

use crate::{StatusCode, System};

/// Waits, up to `deadline`, until every read model running in `system` agrees with the
/// services; fails listing the disagreements left. Returns how many orders and products
/// were compared.
pub async fn read_models_agree(
    system: &System,
    models: &[&str],
    deadline: Duration,
) -> anyhow::Result<(usize, usize)> {
    let last = std::sync::Mutex::new(Vec::new());
    let outcome = wait_for(
        "the read models to agree with the services",
        deadline,
        || async {
            let found = match disagreements(system, models).await {
                Ok((found, counts)) if found.is_empty() => return Some(counts),
                Ok((found, _)) => found,
                Err(error) => vec![format!("reading failed: {error:#}")],
            };
            if let Ok(mut last) = last.lock() {
                *last = found;
            }
            None
        },
    )
    .await;
    outcome.map_err(|e| {
        let last = last.lock().map(|l| l.join("\n- ")).unwrap_or_default();
        anyhow::anyhow!("{e}:\n- {last}")
    })
}

/// Every disagreement between the read models in `models` and the services, and the
/// numbers of orders and products compared.
async fn disagreements(
    system: &System,
    models: &[&str],
) -> anyhow::Result<(Vec<String>, (usize, usize))> {
    let orders = system.all("orders", "/orders").await?;
    let stock = system.all("inventory", "/stock").await?;
    let mut found = Vec::new();
    if models.contains(&"order-view") {
        for order in &orders {
            let id = text(&order["order_id"]);
            let (status, view) = system.get("order-view", &format!("/orders/{id}")).await?;
            if status != StatusCode::OK {
                found.push(format!("order-view has no order {id} ({status})"));
            } else if view["status"] != order["status"] || view["reason"] != order["reason"] {
                found.push(format!(
                    "order {id}: orders says {} {}, order-view {} {}",
                    order["status"], order["reason"], view["status"], view["reason"]
                ));
            }
        }
    }
    if models.contains(&"product-availability") {
        for product in &stock {
            let id = text(&product["product_id"]);
            let (status, view) = system
                .get("product-availability", &format!("/products/{id}"))
                .await?;
            let figures = |v: &Value| {
                ["received", "available", "reserved", "sold"].map(|f| v[f].as_i64().unwrap_or(-1))
            };
            if status != StatusCode::OK {
                found.push(format!(
                    "product-availability has no product {id} ({status})"
                ));
            } else if figures(&view) != figures(product) {
                found.push(format!(
                    "product {id}: inventory says {:?}, product-availability {:?}",
                    figures(product),
                    figures(&view)
                ));
            }
        }
    }
    let confirmed: Vec<&Value> = orders
        .iter()
        .filter(|o| o["status"] == "CONFIRMED")
        .collect();
    let cancelled = orders.iter().filter(|o| o["status"] == "CANCELLED").count();
    if models.contains(&"sales") {
        let expected: i64 = confirmed
            .iter()
            .map(|o| o["total"]["cents"].as_i64().unwrap_or(0))
            .sum();
        let (status, daily) = system.get("sales", "/sales/daily").await?;
        let revenue: i64 = daily["total"]["revenue"]
            .as_array()
            .map(|r| r.iter().filter_map(|c| c["cents"].as_i64()).sum())
            .unwrap_or(-1);
        if status != StatusCode::OK || revenue != expected {
            found.push(format!(
                "revenue: confirmed orders total {expected} cents, sales says {revenue} ({status})"
            ));
        }
    }
    if models.contains(&"saga-tracker") {
        // A stray event typed in for an order nobody placed opens a saga that never ends;
        // only the shop's orders' sagas must have ended.
        let shop: std::collections::HashSet<&str> = orders
            .iter()
            .filter_map(|o| o["order_id"].as_str())
            .collect();
        for state in ["running", "compensating"] {
            let open = sagas(system, state)
                .await?
                .into_iter()
                .filter(|saga| {
                    saga["order_id"]
                        .as_str()
                        .is_some_and(|id| shop.contains(id))
                })
                .count();
            if open > 0 {
                found.push(format!("{open} sagas still {state}"));
            }
        }
        let tracked = (
            sagas(system, "confirmed").await?.len(),
            sagas(system, "cancelled").await?.len(),
        );
        if tracked != (confirmed.len(), cancelled) {
            found.push(format!(
                "sagas confirmed/cancelled {tracked:?}, orders {:?}",
                (confirmed.len(), cancelled)
            ));
        }
    }
    Ok((found, (orders.len(), stock.len())))
}

/// Every saga the saga tracker lists in `state`.
async fn sagas(system: &System, state: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/sagas?state={state}&limit=100"),
            Some(c) => format!("/sagas?state={state}&limit=100&cursor={c}"),
        };
        let (status, page) = system.get("saga-tracker", &path).await?;
        anyhow::ensure!(status == StatusCode::OK, "{path}: {status} {page}");
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(out),
        }
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}
