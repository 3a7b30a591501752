//! `GET /sales/top`: the products that sold most over a period, by units or by revenue.
//!
//! Revenue is only comparable within one currency: a ranking by revenue is in `currency`,
//! or, when that is not given, in the one currency the period's sales are in (a 400 naming
//! `currency` asks for it when there are several).
//!
//! A ranking is one page, the top `limit` products, read from one snapshot: the figures as
//! they stood at one instant, each product once and in its place. It takes no cursor. The
//! figures only grow while sales are counted, so a product climbs the ranking as it sells:
//! pages read one after another would skip a product that climbed above a page already read,
//! and a cursor cannot tell it from one that ranked there all along. `truncated` says
//! whether more products sold than the ranking shows.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use eventmart_events::Currency;
use eventmart_runtime::query::{Params, QueryError, parse_position, read_live, snapshot};
use serde_json::{Map, Value, json};
use sqlx::AnyConnection;

use super::App;
use super::period::Asked;
use super::sales::shown;
use crate::store::figures::{self, Period, Rank, Ranked};

/// Products ranked unless `limit` says otherwise.
pub(crate) const DEFAULT_LIMIT: u32 = 20;

/// Most products one ranking shows.
pub(crate) const MAX_LIMIT: u32 = 100;

/// What a ranking is by, as `by` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum By {
    /// Units sold.
    Units,
    /// Revenue.
    Revenue,
}

impl By {
    /// Every ranking, `by`'s default first.
    pub(crate) const ALL: [By; 2] = [By::Revenue, By::Units];

    /// The name `by` takes: `revenue` or `units`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            By::Units => "units",
            By::Revenue => "revenue",
        }
    }

    /// Reads `revenue` or `units`.
    pub(crate) fn parse(text: &str) -> Result<By, String> {
        By::ALL
            .into_iter()
            .find(|by| by.as_str() == text)
            .ok_or_else(|| format!("must be revenue or units, got {text:?}"))
    }
}

/// `GET /sales/top?from=&to=&by=&currency=&limit=&position=`: the products that sold most
/// during the period, the most first (ties by product id), up to `limit` of them.
pub(super) async fn top(
    State(app): State<App>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let params = Params::of(
        query,
        &["from", "to", "by", "currency", "limit", "position"],
    )?;
    let asked = Asked::of(&params)?;
    let by = params.parse("by", By::parse)?.unwrap_or(By::Revenue);
    let currency = params.parse("currency", Currency::parse)?;
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let position = parse_position(params.get("position"))?;
    let live = read_live(&app.live, position.as_ref(), app.wait_max).await?;
    let period = asked.period();
    let mut tx = snapshot(&live.db).await?;
    let rank = rank(&mut tx, period, by, currency).await?;
    // One more than asked for tells whether more products sold.
    let mut ranked = match rank {
        Some(rank) => figures::top(&mut tx, period, rank, limit + 1).await?,
        None => Vec::new(),
    };
    tx.commit().await?;
    let truncated = ranked.len() > limit as usize;
    ranked.truncate(limit as usize);
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
        "truncated": truncated,
    })))
}

/// What products are ranked by over `period`: `by`, in `currency` if given. Revenue without
/// one is ranked in the one currency the period sold in (`None` if it sold nothing), and
/// refused with a 400 naming `currency` if it sold in several.
async fn rank(
    conn: &mut AnyConnection,
    period: Period,
    by: By,
    currency: Option<Currency>,
) -> Result<Option<Rank>, QueryError> {
    match (by, currency) {
        (By::Units, currency) => Ok(Some(Rank::Units(currency))),
        (By::Revenue, Some(currency)) => Ok(Some(Rank::Revenue(currency))),
        (By::Revenue, None) => {
            let sold_in = figures::currencies(conn, period).await?;
            match sold_in.as_slice() {
                [] => Ok(None),
                [only] => Ok(Some(Rank::Revenue(*only))),
                several => {
                    let codes: Vec<&str> = several.iter().map(Currency::as_str).collect();
                    Err(QueryError::invalid(
                        "currency",
                        format!(
                            "the period's sales are in {}; name the one to rank revenue in",
                            codes.join(", ")
                        ),
                    ))
                }
            }
        }
    }
}

/// A ranked product as listed.
fn item(ranked: &Ranked) -> Value {
    let mut fields = Map::new();
    fields.insert("product_id".into(), json!(ranked.product_id));
    fields.extend(shown(&ranked.figures));
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rankings_are_named_revenue_or_units() {
        assert_eq!(By::parse("revenue"), Ok(By::Revenue));
        assert_eq!(By::parse("units"), Ok(By::Units));
        for bad in ["", "Revenue", "orders"] {
            assert!(By::parse(bad).is_err(), "{bad:?}");
        }
    }
}
