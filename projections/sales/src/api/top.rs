//! `GET /sales/top`: the products that sold most over a period, by units or by revenue.
//!
//! Revenue is only comparable within one currency: a ranking by revenue is in `currency`,
//! or, when that is not given, in the one currency the period's sales are in (a 400 naming
//! `currency` asks for it when there are several).

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use eventmart_events::Currency;
use eventmart_runtime::query::{Params, QueryError, parse_position, read_live};
use serde_json::{Map, Value, json};

use super::App;
use super::page::{By, DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor};
use super::period::Asked;
use super::sales::shown;
use crate::store::figures::{self, After, Rank, Ranked};

/// `GET /sales/top?from=&to=&by=&currency=&limit=&cursor=&position=`: a page of the products
/// that sold during the period, the most first (ties by product id); `next_cursor` is the
/// `cursor` of the next page, `null` on the last.
pub(super) async fn top(
    State(app): State<App>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let params = Params::of(
        query,
        &[
            "from", "to", "by", "currency", "limit", "cursor", "position",
        ],
    )?;
    let asked = Asked::of(&params)?;
    let by = params.parse("by", By::parse)?.unwrap_or(By::Revenue);
    let currency = params.parse("currency", Currency::parse)?;
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = params.parse("cursor", |text| decode_cursor(by, text))?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let mut conn = live.db.pool.acquire().await?;
    let period = asked.period();
    let rank = match (by, currency) {
        (By::Units, currency) => Some(Rank::Units(currency)),
        (By::Revenue, Some(currency)) => Some(Rank::Revenue(currency)),
        (By::Revenue, None) => {
            let sold_in = figures::currencies(&mut conn, period).await?;
            match sold_in.as_slice() {
                [] => None,
                [only] => Some(Rank::Revenue(*only)),
                several => {
                    let codes: Vec<&str> = several.iter().map(Currency::as_str).collect();
                    return Err(QueryError::invalid(
                        "currency",
                        format!(
                            "the period's sales are in {}; name the one to rank revenue in",
                            codes.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    // One more than asked for tells whether another page follows.
    let mut ranked = match rank {
        Some(rank) => figures::top(&mut conn, period, rank, after, limit + 1).await?,
        None => Vec::new(),
    };
    let more = ranked.len() > limit as usize;
    ranked.truncate(limit as usize);
    let next_cursor = ranked.last().filter(|_| more).map(|last| {
        encode_cursor(
            by,
            After {
                figure: last.figure,
                product_id: last.product_id,
            },
        )
    });
    let ranked_in = match rank {
        Some(Rank::Revenue(currency)) | Some(Rank::Units(Some(currency))) => Some(currency),
        _ => None,
    };
    let (from, to) = asked.to_json();
    let items: Vec<Value> = ranked.iter().map(item).collect();
    Ok(Json(json!({
        "from": from,
        "to": to,
        "by": by.as_str(),
        "currency": ranked_in.map(|c| c.as_str().to_owned()),
        "items": items,
        "next_cursor": next_cursor,
    })))
}

/// A ranked product as listed.
fn item(ranked: &Ranked) -> Value {
    let mut fields = Map::new();
    fields.insert("product_id".into(), json!(ranked.product_id));
    fields.extend(shown(&ranked.figures));
    Value::Object(fields)
}
