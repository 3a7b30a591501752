//! Reading stock and reservations as they are now.

use axum::Json;
use axum::extract::{Path, Query, State};
use eventmart_runtime::command::CommandError;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{App, parse_id};
use crate::store;

/// Stock rows per page when the query does not say.
const DEFAULT_LIMIT: u32 = 100;
/// The most stock rows one page may hold.
const MAX_LIMIT: u32 = 500;

/// `GET /stock/{product_id}`: the product's stock, or 404.
pub(super) async fn get_stock(
    State(app): State<App>,
    Path(product_id): Path<String>,
) -> Result<Json<Value>, CommandError> {
    let product_id = parse_id("product_id", &product_id)?;
    let mut conn = app.journal.db().pool.acquire().await?;
    match store::stock(&mut conn, product_id).await? {
        Some(stock) => Ok(Json(serde_json::to_value(stock)?)),
        None => Err(CommandError::NotFound(format!(
            "product {product_id} is not in the inventory"
        ))),
    }
}

/// `GET /stock?after=<product_id>&limit=<1..=500>`: a page of stock rows in product id order;
/// `next` is the `after` of the next page, null on the last.
pub(super) async fn list_stock(
    State(app): State<App>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, CommandError> {
    let mut after: Option<Uuid> = None;
    let mut limit = DEFAULT_LIMIT;
    for (name, value) in &params {
        match name.as_str() {
            "after" => after = Some(parse_id("after", value)?),
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        CommandError::invalid_field(
                            "limit",
                            format!("must be a whole number from 1 to {MAX_LIMIT}, got {value:?}"),
                        )
                    })?;
            }
            other => {
                return Err(CommandError::invalid_field(
                    other,
                    "is not a parameter of this query; use after and limit",
                ));
            }
        }
    }
    let mut conn = app.journal.db().pool.acquire().await?;
    let (items, more) = store::stock_page(&mut conn, after, limit).await?;
    let next = match items.last() {
        Some(last) if more => json!(last.product_id),
        _ => Value::Null,
    };
    Ok(Json(json!({ "items": items, "next": next })))
}

/// `GET /reservations/{order_id}`: what the inventory did about the order, or 404.
pub(super) async fn get_reservation(
    State(app): State<App>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, CommandError> {
    let order_id = parse_id("order_id", &order_id)?;
    let mut conn = app.journal.db().pool.acquire().await?;
    match store::reservation(&mut conn, order_id).await? {
        Some(reservation) => Ok(Json(json!({
            "order_id": reservation.order_id,
            "status": reservation.status,
            "lines": reservation.lines,
        }))),
        None => Err(CommandError::NotFound(format!(
            "the inventory has no reservation for order {order_id}"
        ))),
    }
}
