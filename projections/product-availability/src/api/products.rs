//! `GET /products/{product_id}` and `GET /products`, and how a product is shown.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use eventmart_events::timestamp;
use eventmart_runtime::query::{Params, QueryError, parse_id, parse_position, read_live};
use serde_json::{Value, json};

use super::App;
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor};
use crate::store::products;
use crate::view::{Availability, Stocked};

/// `GET /products/{product_id}?position=`: the product with its price and stock, or 404.
pub(super) async fn get(
    State(app): State<App>,
    Path(product_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let product_id = parse_id("product_id", &product_id)?;
    let params = Params::of(query, &["position"])?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let mut conn = live.db.pool.acquire().await?;
    let product = products::load(&mut conn, product_id)
        .await?
        .ok_or_else(|| {
            QueryError::NotFound(format!("product availability has no product {product_id}"))
        })?;
    Ok(Json(shown(&product)))
}

/// `GET /products?availability=&limit=&cursor=&position=`: a page of the products whose
/// `product.created` has arrived, by product id; `next_cursor` is the `cursor` of the next
/// page, `null` on the last.
pub(super) async fn list(
    State(app): State<App>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let params = Params::of(query, &["availability", "limit", "cursor", "position"])?;
    let stocked = params.parse("availability", Stocked::parse)?;
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params.parse("cursor", decode_cursor)?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let mut conn = live.db.pool.acquire().await?;
    // One more than asked for tells whether another page follows.
    let mut page = products::page(&mut conn, stocked, after, limit + 1).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor = page
        .last()
        .filter(|_| more)
        .map(|last| encode_cursor(last.product_id));
    let items: Vec<Value> = page.iter().map(shown).collect();
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

/// A product as the API shows it. The fields `product.created` sets are `null` until it
/// has arrived.
fn shown(product: &Availability) -> Value {
    let listing = product.listing.as_ref();
    let counts = product.counts;
    json!({
        "product_id": product.product_id,
        "sku": listing.map(|l| l.sku.as_str()),
        "name": listing.map(|l| l.name.as_str()),
        "price": product.price.map(|p| json!({
            "cents": p.money.cents,
            "currency": p.money.currency.as_str(),
        })),
        "received": counts.received,
        "available": counts.available,
        "reserved": counts.reserved,
        "sold": counts.sold,
        "updated_at": timestamp::to_rfc3339(&product.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use eventmart_events::{Currency, Money};
    use uuid::Uuid;

    use super::*;
    use crate::view::{Counts, Listing, Price};

    #[test]
    fn a_product_is_shown_with_its_price_and_stock() {
        let at = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let product_id = Uuid::from_u128(1);
        let product = Availability {
            product_id,
            listing: Some(Listing {
                sku: "TEE-1".into(),
                name: "T-shirt".into(),
                at,
                event_id: Uuid::from_u128(2),
            }),
            price: Some(Price {
                money: Money::new(1500, Currency::EUR),
                at,
                event_id: Uuid::from_u128(3),
            }),
            counts: Counts {
                received: 10,
                available: 6,
                reserved: 3,
                sold: 1,
            },
            updated_at: at,
        };
        assert_eq!(
            shown(&product),
            json!({
                "product_id": product_id,
                "sku": "TEE-1",
                "name": "T-shirt",
                "price": {"cents": 1500, "currency": "EUR"},
                "received": 10,
                "available": 6,
                "reserved": 3,
                "sold": 1,
                "updated_at": "2023-11-14T22:13:20.123Z",
            })
        );
    }

    #[test]
    fn a_product_whose_creation_has_not_arrived_shows_its_stock_alone() {
        let product = Availability {
            product_id: Uuid::from_u128(1),
            listing: None,
            price: None,
            counts: Counts {
                received: 4,
                available: 4,
                reserved: 0,
                sold: 0,
            },
            updated_at: Utc.timestamp_millis_opt(0).unwrap(),
        };
        let shown = shown(&product);
        for field in ["sku", "name", "price"] {
            assert_eq!(shown[field], Value::Null, "{field}");
        }
        assert_eq!(shown["available"], 4);
    }
}
