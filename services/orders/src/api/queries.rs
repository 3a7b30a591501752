//! `GET /orders/{order_id}` and `GET /orders`.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use eventmart_runtime::command::CommandError;
use eventmart_runtime::state;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{App, parse_order_id, view};
use crate::record::{self, StoredOrder};

/// Orders per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;

/// Most orders per page.
const MAX_LIMIT: u32 = 500;

/// `GET /orders/{order_id}`: the order, or 404.
pub(super) async fn get(
    State(app): State<App>,
    Path(order_id): Path<String>,
) -> Result<Json<Value>, CommandError> {
    let order_id = parse_order_id(&order_id)?;
    let mut conn = app.journal.db().pool.acquire().await?;
    match record::load_order(&mut conn, order_id).await?.state {
        Some(stored) => Ok(Json(view(&stored.order))),
        None => Err(CommandError::NotFound(format!(
            "order {order_id} does not exist"
        ))),
    }
}

/// `GET /orders?after=<order id>&limit=<1..=500>`: orders in id order (which is the order
/// they were placed in), after `after`; `next` is the `after` of the next page, `null` when
/// this page is the last.
pub(super) async fn list(
    State(app): State<App>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, CommandError> {
    let Query(params) = query.map_err(|e| CommandError::Invalid(e.body_text()))?;
    let (after, limit) = page(&params)?;
    let mut conn = app.journal.db().pool.acquire().await?;
    let after = after.map(|id| id.to_string());
    let orders =
        state::list::<StoredOrder>(&mut conn, record::ORDER, after.as_deref(), limit).await?;
    let full = orders.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let next = orders
        .last()
        .filter(|_| full)
        .map(|(id, _)| Value::from(id.as_str()))
        .unwrap_or(Value::Null);
    let items: Vec<Value> = orders
        .iter()
        .map(|(_, stored)| view(&stored.state.order))
        .collect();
    Ok(Json(json!({ "items": items, "next": next })))
}

/// The `after` and `limit` of a page, or a 400 naming the parameter.
fn page(params: &HashMap<String, String>) -> Result<(Option<Uuid>, u32), CommandError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "after" | "limit"))
    {
        return Err(CommandError::invalid_field(
            unknown.clone(),
            "is not a parameter; use after and limit",
        ));
    }
    let after = params
        .get("after")
        .map(|text| {
            Uuid::parse_str(text).map_err(|_| {
                CommandError::invalid_field("after", format!("must be an order id, got {text:?}"))
            })
        })
        .transpose()?;
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                CommandError::invalid_field(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}, got {text:?}"),
                )
            })?,
    };
    Ok((after, limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn field(result: Result<(Option<Uuid>, u32), CommandError>) -> String {
        match result {
            Err(CommandError::InvalidField { field, .. }) => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_page_defaults_to_the_first_hundred() {
        assert_eq!(page(&params(&[])).unwrap(), (None, DEFAULT_LIMIT));
    }

    #[test]
    fn a_page_starts_after_the_given_order_and_holds_at_most_limit() {
        let id = Uuid::now_v7();
        let (after, limit) =
            page(&params(&[("after", &id.to_string()), ("limit", "500")])).unwrap();
        assert_eq!((after, limit), (Some(id), 500));
    }

    #[test]
    fn a_bad_parameter_is_named() {
        assert_eq!(field(page(&params(&[("after", "x")]))), "after");
        for bad in ["0", "501", "-1", "ten"] {
            assert_eq!(field(page(&params(&[("limit", bad)]))), "limit");
        }
        assert_eq!(field(page(&params(&[("offset", "3")]))), "offset");
    }
}
