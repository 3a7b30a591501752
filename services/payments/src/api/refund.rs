//! `POST /payments/{order_id}/refund`: a manual refund of a completed payment.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use eventmart_runtime::command::{
    Accepted, CommandError, CommandResponse, idempotency_key, parse_body, run_command,
};
use eventmart_runtime::decider::Decider;
use serde::Deserialize;

use super::read::payment_view;
use super::{App, parse_id};
use crate::domain::{Command, PaymentError, RefundReason};
use crate::store::{Change, continuing, load_payment};

/// The `error` code of a refund refused because the payment is not COMPLETED.
const NOT_REFUNDABLE: &str = "not_refundable";

/// The request body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundRequest {
    /// Why the payment is paid back.
    reason: String,
}

/// `POST /payments/{order_id}/refund`.
pub(super) async fn refund(
    State(app): State<App>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let order_id = parse_id("order_id", &order_id)?;
    let request: RefundRequest = parse_body(&body)?;
    let reason = RefundReason::parse(&request.reason)
        .map_err(|reason| CommandError::invalid_field("reason", reason))?;
    let key = idempotency_key(&headers)?;
    let mut fingerprint = format!("POST /payments/{order_id}/refund\n").into_bytes();
    fingerprint.extend_from_slice(&body);
    let response = run_command(&app.store.journal, key, &fingerprint, |tx| {
        let (app, reason) = (app.clone(), reason.clone());
        Box::pin(async move {
            let loaded = load_payment(tx, order_id).await?;
            if loaded.version == 0 {
                return Err(CommandError::NotFound(format!(
                    "no payment is known for order {order_id}"
                )));
            }
            let at = eventmart_events::timestamp::now();
            let events = app
                .payments
                .decide(&loaded.state, &Command::Refund { reason, at })
                .map_err(|e| match e {
                    PaymentError::NotRefundable { .. } => {
                        CommandError::refused(NOT_REFUNDABLE, e.to_string())
                    }
                    e => CommandError::Internal(e.to_string()),
                })?;
            let causes = &loaded.state.causes;
            let cause = causes.reserved.as_ref().or(causes.order.as_ref());
            let events = events
                .into_iter()
                .map(|event| {
                    let envelope = continuing(&event, cause, "manual_refund");
                    (event, envelope)
                })
                .collect();
            let mut change = Change::new(order_id, loaded);
            change.decide(events);
            let (payment, appended) = app.store.write(tx, change).await?;
            let mut accepted = Accepted::ok(payment_view(order_id, &payment));
            if let Some(appended) = &appended {
                accepted = accepted.appended(appended);
            }
            Ok(accepted)
        })
    })
    .await?;
    Ok(response)
}
