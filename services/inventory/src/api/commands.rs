//! Restocking and adjusting a product's stock: each a decision on the product's row, saved
//! with its `inventory.updated` event in one transaction.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use eventmart_events::{Envelope, timestamp};
use eventmart_runtime::command::{
    Accepted, CommandError, CommandResponse, idempotency_key, parse_body, run_command,
};
use eventmart_runtime::journal::ExpectedVersion;
use serde::Deserialize;
use uuid::Uuid;

use super::{App, parse_id, refused};
use crate::domain::{Command, Delta, Quantity, Reason, decide_and_fold};
use crate::store::Loaded;

/// `POST /stock/{product_id}/restock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Restock {
    quantity: i64,
}

/// `POST /stock/{product_id}/adjust`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Adjust {
    delta: i64,
    reason: String,
}

/// Goods of a known product were received.
pub(super) async fn restock(
    State(app): State<App>,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let product_id = parse_id("product_id", &product_id)?;
    let request: Restock = parse_body(&body)?;
    let quantity = Quantity::parse(request.quantity)
        .map_err(|e| CommandError::invalid_field("quantity", e.to_string()))?;
    let command = Command::Restock {
        product_id,
        quantity,
        at: timestamp::now(),
    };
    execute(&app, &headers, "restock", &body, product_id, command).await
}

/// A known product's stock on hand is corrected.
pub(super) async fn adjust(
    State(app): State<App>,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let product_id = parse_id("product_id", &product_id)?;
    let request: Adjust = parse_body(&body)?;
    let delta = Delta::parse(request.delta)
        .map_err(|e| CommandError::invalid_field("delta", e.to_string()))?;
    let reason = Reason::parse(&request.reason)
        .map_err(|e| CommandError::invalid_field("reason", e.to_string()))?;
    let command = Command::Adjust {
        product_id,
        delta,
        reason,
        at: timestamp::now(),
    };
    execute(&app, &headers, "adjust", &body, product_id, command).await
}

/// Decides `command` on the product's stock, saves it and appends its event; answers the
/// stock after it.
async fn execute(
    app: &App,
    headers: &HeaderMap,
    action: &'static str,
    body: &[u8],
    product_id: Uuid,
    command: Command,
) -> Result<CommandResponse, CommandError> {
    let key = idempotency_key(headers)?;
    // One key may be sent to either endpoint of any product: they are part of the request.
    let mut fingerprint = format!("POST /stock/{product_id}/{action}\n").into_bytes();
    fingerprint.extend_from_slice(body);
    run_command(&app.journal, key, &fingerprint, |tx| {
        let journal = app.journal.clone();
        let command = command.clone();
        Box::pin(async move {
            let mut loaded = Loaded::default();
            loaded.read_stock(&mut *tx, &[product_id]).await?;
            let (events, after) = decide_and_fold(&loaded.state, &command).map_err(refused)?;
            loaded.save(&mut *tx, &after).await?;
            let events = events
                .into_iter()
                .map(|event| {
                    let envelope = Envelope::new(&event);
                    (event, envelope)
                })
                .collect();
            let appended = journal
                .append(tx, &product_id.to_string(), ExpectedVersion::Any, events)
                .await?;
            let stock = after.stock.get(&product_id).ok_or_else(|| {
                CommandError::Internal(format!("product {product_id} has no stock after {action}"))
            })?;
            Ok(Accepted::ok(serde_json::to_value(stock)?).appended(&appended))
        })
    })
    .await
}
