//! The HTTP API: commands that place and cancel orders, and reads of the orders kept here.
//!
//! - `POST /orders` places an order (201), priced from the local product replica.
//! - `POST /orders/{order_id}/cancel` cancels a pending order (200); a confirmed or
//!   cancelled one is refused with 409 `order_confirmed` / `order_cancelled`.
//! - `GET /orders/{order_id}` shows one order; `GET /orders?after=&limit=` pages through
//!   them in id order.
//!
//! Errors are JSON `{"error": "<code>", "message": "…"}` (with `field` for a 400).

mod commands;
mod queries;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use eventmart_runtime::command::CommandError;
use eventmart_runtime::journal::Journal;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::Order;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The service's journal (and, through it, its database).
    pub(crate) journal: Journal,
    /// How long an order may stay pending.
    pub(crate) deadline: Duration,
}

/// The API's routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/orders", post(commands::place).get(queries::list))
        .route("/orders/{order_id}", get(queries::get))
        .route("/orders/{order_id}/cancel", post(commands::cancel))
        .with_state(app)
}

/// An order as the API shows it.
fn view(order: &Order) -> Value {
    serde_json::to_value(order).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// Path parameter `order_id` as a UUID, or a 400 naming it.
fn parse_order_id(text: &str) -> Result<Uuid, CommandError> {
    Uuid::parse_str(text).map_err(|_| {
        CommandError::invalid_field("order_id", format!("must be a UUID, got {text:?}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderError;
    use crate::record::RecordError;
    use axum::http::StatusCode;

    #[test]
    fn refusals_by_the_orders_state_are_conflicts() {
        for refusal in [
            OrderError::Confirmed(Uuid::nil()),
            OrderError::Cancelled(Uuid::nil()),
        ] {
            let error = CommandError::from(RecordError::Refused(refusal.clone()));
            assert_eq!(error.status(), StatusCode::CONFLICT, "{refusal}");
        }
        let unknown =
            CommandError::from(RecordError::Refused(OrderError::UnknownUser(Uuid::nil())));
        assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
