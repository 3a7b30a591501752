//! The read endpoints: payments and credit, from the service's state.

use axum::Json;
use axum::extract::{Path, Query, State};
use eventmart_runtime::command::CommandError;
use eventmart_runtime::state;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{App, parse_id};
use crate::domain::Payment;
use crate::store::{PAYMENT, load_credit, load_payment};

/// Payments per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;

/// Most payments per page.
const MAX_LIMIT: u32 = 500;

/// A payment as the API shows it.
fn view(order_id: &str, payment: &Payment) -> Value {
    json!({
        "order_id": order_id,
        "user_id": payment.user_id,
        "amount": payment.amount,
        "status": payment.status.as_str(),
        "payment_id": payment.payment_id,
        "reason": payment.reason,
        "cancelled": payment.cancelled,
        "charges": payment.charges,
    })
}

/// The view of the payment of `order_id` after a command.
pub(super) fn payment_view(order_id: uuid::Uuid, payment: &Payment) -> Value {
    view(&order_id.to_string(), payment)
}

/// `GET /payments/{order_id}`.
pub(super) async fn payment(
    State(app): State<App>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, CommandError> {
    let order_id = parse_id("order_id", &order_id)?;
    let mut conn = app.store.journal.db().pool.acquire().await?;
    let payment = load_payment(&mut conn, order_id).await?;
    if payment.version == 0 {
        return Err(CommandError::NotFound(format!(
            "no payment is known for order {order_id}"
        )));
    }
    Ok(Json(payment_view(order_id, &payment.state)))
}

/// The query of `GET /payments`, as text so that a bad value is refused naming it.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /payments?after=&limit=`.
pub(super) async fn list_payments(
    State(app): State<App>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, CommandError> {
    let after = query
        .after
        .as_deref()
        .map(|after| parse_id("after", after))
        .transpose()?
        .map(|after| after.to_string());
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| {
                CommandError::invalid_field(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}, got {text:?}"),
                )
            })?,
    };
    let mut conn = app.store.journal.db().pool.acquire().await?;
    let page = state::list::<Payment>(&mut conn, PAYMENT, after.as_deref(), limit).await?;
    let full = page.len() == limit as usize;
    let next = page.last().filter(|_| full).map(|(id, _)| id.clone());
    let items: Vec<Value> = page
        .iter()
        .map(|(id, payment)| view(id, &payment.state))
        .collect();
    Ok(Json(json!({ "items": items, "next": next })))
}

/// `GET /users/{user_id}/credit`.
pub(super) async fn credit(
    State(app): State<App>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, CommandError> {
    let user_id = parse_id("user_id", &user_id)?;
    let mut conn = app.store.journal.db().pool.acquire().await?;
    let credit = load_credit(&mut conn, user_id).await?;
    Ok(Json(json!({
        "user_id": user_id,
        "outstanding_cents": credit.state.outstanding_cents,
        "limit_cents": app.payments.provider.credit_limit_cents(),
    })))
}
