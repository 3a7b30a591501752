//! `GET /orders/{order_id}` and `GET /users/{user_id}/orders`, and how an order is shown.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use eventmart_events::timestamp;
use serde_json::{Map, Value, json};

use eventmart_runtime::query::{Params, QueryError, parse_id, parse_position, read_live, snapshot};

use super::App;
use super::page::{DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor};
use crate::store;
use crate::view::{OrderView, Status, TimelineEntry};

/// `GET /orders/{order_id}?position=`: the order with its timeline, or 404. Both are read
/// from one snapshot: the projector changes an order in the transaction that adds the event
/// to its timeline, and an answer must not show one without the other.
pub(super) async fn get(
    State(app): State<App>,
    Path(order_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let order_id = parse_id("order_id", &order_id)?;
    let params = Params::of(query, &["position"])?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let mut tx = snapshot(&live.db).await?;
    let view = store::load(&mut tx, order_id)
        .await?
        .ok_or_else(|| QueryError::NotFound(format!("the order view has no order {order_id}")))?;
    let timeline = store::timeline(&mut tx, order_id).await?;
    tx.commit().await?;
    Ok(Json(order(&view, &timeline)))
}

/// `GET /users/{user_id}/orders?status=&limit=&cursor=&position=`: a page of the
/// customer's orders, newest first; `next_cursor` is the `cursor` of the next page, `null`
/// on the last.
pub(super) async fn list(
    State(app): State<App>,
    Path(user_id): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let user_id = parse_id("user_id", &user_id)?;
    let params = Params::of(query, &["status", "limit", "cursor", "position"])?;
    let status = params
        .get("status")
        .map(Status::parse)
        .transpose()
        .map_err(|e| QueryError::invalid("status", e.to_string()))?;
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params
        .get("cursor")
        .map(decode_cursor)
        .transpose()
        .map_err(|e| QueryError::invalid("cursor", e))?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let mut conn = live.db.pool.acquire().await?;
    // One more than asked for tells whether another page follows.
    let mut orders = store::page(&mut conn, user_id, status, after, limit + 1).await?;
    let more = orders.len() > limit as usize;
    orders.truncate(limit as usize);
    let next_cursor = orders.last().filter(|_| more).and_then(encode_cursor);
    let items: Vec<Value> = orders.iter().map(|o| Value::Object(summary(o))).collect();
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

/// An order as listed: everything but its lines and timeline. Fields `order.created` sets
/// are `null` until it has arrived.
fn summary(view: &OrderView) -> Map<String, Value> {
    let placed = view.placed.as_ref();
    let fields = json!({
        "order_id": view.order_id,
        "user_id": placed.map(|p| p.user_id),
        "status": view.status.as_str(),
        "reason": view.reason,
        "total": placed.map(|p| json!({ "cents": p.total.cents, "currency": p.total.currency.as_str() })),
        "payment_id": view.payment_id,
        "created_at": placed.map(|p| timestamp::to_rfc3339(&p.created_at)),
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// An order in full: its summary, lines and timeline (by `occurred_at`, then event id).
fn order(view: &OrderView, timeline: &[TimelineEntry]) -> Value {
    let mut fields = summary(view);
    let lines = view.placed.as_ref().map(|p| {
        p.lines
            .iter()
            .map(|line| {
                json!({
                    "product_id": line.product_id,
                    "quantity": line.quantity,
                    "unit_price": {
                        "cents": line.unit_price.cents,
                        "currency": line.unit_price.currency.as_str(),
                    },
                })
            })
            .collect::<Vec<_>>()
    });
    fields.insert("lines".into(), json!(lines));
    let timeline: Vec<Value> = timeline
        .iter()
        .map(|entry| {
            json!({
                "event_type": entry.event_type,
                "step": entry.step,
                "service": entry.service,
                "event_id": entry.event_id,
                "occurred_at": timestamp::to_rfc3339(&entry.occurred_at),
            })
        })
        .collect();
    fields.insert("timeline".into(), json!(timeline));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use eventmart_events::orders::OrderLine;
    use eventmart_events::{Currency, Money};
    use uuid::Uuid;

    use super::*;
    use crate::view::Placed;

    #[test]
    fn an_order_is_shown_with_its_lines_total_and_timeline() {
        let created_at = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let (order_id, user_id, product_id, event_id) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let view = OrderView {
            order_id,
            status: Status::Pending,
            reason: None,
            payment_id: None,
            placed: Some(Placed {
                user_id,
                total: Money::new(500, Currency::EUR),
                lines: vec![OrderLine {
                    product_id,
                    quantity: 2,
                    unit_price: Money::new(250, Currency::EUR),
                }],
                created_at,
            }),
            updated_at: created_at,
        };
        let timeline = [TimelineEntry {
            order_id,
            event_id,
            event_type: "order.created".into(),
            step: "CREATED".into(),
            service: "orders".into(),
            occurred_at: created_at,
        }];
        assert_eq!(
            order(&view, &timeline),
            json!({
                "order_id": order_id,
                "user_id": user_id,
                "status": "PENDING",
                "reason": null,
                "total": {"cents": 500, "currency": "EUR"},
                "payment_id": null,
                "created_at": "2023-11-14T22:13:20.123Z",
                "lines": [{"product_id": product_id, "quantity": 2,
                           "unit_price": {"cents": 250, "currency": "EUR"}}],
                "timeline": [{"event_type": "order.created", "step": "CREATED",
                              "service": "orders", "event_id": event_id,
                              "occurred_at": "2023-11-14T22:13:20.123Z"}],
            })
        );
    }

    #[test]
    fn an_order_whose_creation_has_not_arrived_shows_what_is_known() {
        let view = OrderView {
            order_id: Uuid::from_u128(1),
            status: Status::Cancelled,
            reason: Some("payment_declined".into()),
            payment_id: None,
            placed: None,
            updated_at: Utc.timestamp_millis_opt(0).unwrap(),
        };
        let shown = order(&view, &[]);
        assert_eq!(shown["status"], "CANCELLED");
        assert_eq!(shown["reason"], "payment_declined");
        for field in ["user_id", "total", "created_at", "lines"] {
            assert_eq!(shown[field], Value::Null, "{field}");
        }
        assert_eq!(shown["timeline"], json!([]));
    }
}
