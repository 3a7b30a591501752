//! The HTTP API: payments and credit as this service knows them, and manual refunds.
//!
//! - `GET /payments/{order_id}`: one order's payment (404 if never seen).
//! - `GET /payments?after=<order_id>&limit=<1..=500>`: payments in order id order, a page at
//!   a time; `next` is the `after` of the next page, `null` on the last one.
//! - `POST /payments/{order_id}/refund` `{"reason": "…"}`: pays a COMPLETED payment back
//!   (`payment.refunded`); any other payment answers 409 `not_refundable`.
//! - `GET /users/{user_id}/credit`: what the user has charged and not refunded, and the
//!   credit limit.

mod read;
mod refund;

use axum::Router;
use axum::routing::{get, post};
use eventmart_runtime::command::CommandError;
use uuid::Uuid;

use crate::domain::Payments;
use crate::store::Store;

/// What the handlers share.
#[derive(Clone, Debug)]
pub(crate) struct App {
    /// Where changes are written (and the journal).
    pub(crate) store: Store,
    /// The decider.
    pub(crate) payments: Payments,
}

/// The API's routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/payments", get(read::list_payments))
        .route("/payments/{order_id}", get(read::payment))
        .route("/payments/{order_id}/refund", post(refund::refund))
        .route("/users/{user_id}/credit", get(read::credit))
        .with_state(app)
}

/// Path parameter `field` as a UUID, or a 400 naming it.
fn parse_id(field: &str, text: &str) -> Result<Uuid, CommandError> {
    Uuid::parse_str(text)
        .map_err(|_| CommandError::invalid_field(field, format!("must be a UUID, got {text:?}")))
}
