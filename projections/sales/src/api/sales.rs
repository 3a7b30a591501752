//! `GET /sales/daily` and `GET /sales/products/{product_id}`, and how figures are shown.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use eventmart_runtime::query::{Params, QueryError, parse_id, parse_position, read_live, snapshot};
use serde_json::{Map, Value, json};

use super::App;
use super::period::Asked;
use crate::sale::Day;
use crate::store::figures::{self, Figures};

/// `GET /sales/daily?from=&to=&position=`: each day of the period that sold anything, and
/// the period's total.
pub(super) async fn daily(
    State(app): State<App>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let params = Params::of(query, &["from", "to", "position"])?;
    let asked = Asked::of(&params)?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    // Units and revenue come from one table, orders from another: one snapshot, so that
    // a day never counts an order without its units.
    let mut tx = snapshot(&live.db).await?;
    let days = figures::days(&mut tx, asked.period()).await?;
    tx.commit().await?;
    let (from, to) = asked.to_json();
    let mut body = Map::new();
    body.insert("from".into(), from);
    body.insert("to".into(), to);
    body.extend(days_and_total(&days));
    Ok(Json(Value::Object(body)))
}

/// `GET /sales/products/{product_id}?from=&to=&position=`: what the product sold each day of
/// the period that it sold anything, and in all; 404 if it never sold.
pub(super) async fn product(
    State(app): State<App>,
    Path(product_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let product_id = parse_id("product_id", &product_id)?;
    let params = Params::of(query, &["from", "to", "position"])?;
    let asked = Asked::of(&params)?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let mut tx = snapshot(&live.db).await?;
    let days = figures::product_days(&mut tx, product_id, asked.period()).await?;
    if days.is_empty() && !figures::ever_sold(&mut tx, product_id).await? {
        return Err(QueryError::NotFound(format!(
            "product {product_id} has not sold (no confirmed order has it)"
        )));
    }
    tx.commit().await?;
    let (from, to) = asked.to_json();
    let mut body = Map::new();
    body.insert("product_id".into(), json!(product_id));
    body.insert("from".into(), from);
    body.insert("to".into(), to);
    body.extend(days_and_total(&days));
    Ok(Json(Value::Object(body)))
}

/// `days` (each with its `day`), by day, and their `total`.
fn days_and_total(days: &BTreeMap<Day, Figures>) -> Map<String, Value> {
    let listed: Vec<Value> = days
        .iter()
        .map(|(day, figures)| {
            let mut fields = Map::new();
            fields.insert("day".into(), json!(day.to_string()));
            fields.extend(shown(figures));
            Value::Object(fields)
        })
        .collect();
    let mut out = Map::new();
    out.insert("days".into(), Value::Array(listed));
    out.insert(
        "total".into(),
        Value::Object(shown(&Figures::total(days.values()))),
    );
    out
}

/// Figures as answered: `orders`, `units` and `revenue`, a list of `{currency, cents}` by
/// currency code.
pub(super) fn shown(figures: &Figures) -> Map<String, Value> {
    let revenue: Vec<Value> = figures
        .revenue
        .iter()
        .map(|(currency, cents)| json!({ "currency": currency.as_str(), "cents": cents }))
        .collect();
    let mut out = Map::new();
    out.insert("orders".into(), json!(figures.orders));
    out.insert("units".into(), json!(figures.units));
    out.insert("revenue".into(), Value::Array(revenue));
    out
}

#[cfg(test)]
mod tests {
    use eventmart_events::Currency;

    use super::*;

    fn figures(orders: i64, units: i64, revenue: &[(Currency, i64)]) -> Figures {
        Figures {
            orders,
            units,
            revenue: revenue.iter().copied().collect(),
        }
    }

    #[test]
    fn days_are_listed_in_order_with_their_total() {
        let days: BTreeMap<Day, Figures> = [
            (
                Day::parse("2024-05-02").unwrap(),
                figures(1, 2, &[(Currency::USD, 300)]),
            ),
            (
                Day::parse("2024-05-01").unwrap(),
                figures(2, 5, &[(Currency::EUR, 1000), (Currency::USD, 50)]),
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            Value::Object(days_and_total(&days)),
            json!({
                "days": [
                    {"day": "2024-05-01", "orders": 2, "units": 5, "revenue": [
                        {"currency": "EUR", "cents": 1000}, {"currency": "USD", "cents": 50}]},
                    {"day": "2024-05-02", "orders": 1, "units": 2, "revenue": [
                        {"currency": "USD", "cents": 300}]},
                ],
                "total": {"orders": 3, "units": 7, "revenue": [
                    {"currency": "EUR", "cents": 1000}, {"currency": "USD", "cents": 350}]},
            })
        );
    }

    #[test]
    fn a_period_that_sold_nothing_has_a_zero_total() {
        assert_eq!(
            Value::Object(days_and_total(&BTreeMap::new())),
            json!({"days": [], "total": {"orders": 0, "units": 0, "revenue": []}})
        );
    }
}
