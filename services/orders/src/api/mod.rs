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

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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

/// Codes of commands refused because of where the order stands: answered 409, as the
/// order's state, not the request, is in the way.
const STATE_REFUSALS: [&str; 2] = ["order_confirmed", "order_cancelled"];

/// Why a request failed: a command error, or a command refused by the order's state.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// Answered as the runtime maps it.
    Command(CommandError),
    /// 409 with a stable code.
    StateRefusal {
        /// One of [`STATE_REFUSALS`].
        code: String,
        /// What went wrong, for people.
        message: String,
    },
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected { code, message } if STATE_REFUSALS.contains(&code.as_str()) => {
                ApiError::StateRefusal { code, message }
            }
            error => ApiError::Command(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Command(error) => error.into_response(),
            ApiError::StateRefusal { code, message } => (
                StatusCode::CONFLICT,
                Json(json!({ "error": code, "message": message })),
            )
                .into_response(),
        }
    }
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

    #[test]
    fn refusals_by_the_orders_state_are_conflicts() {
        for refusal in [
            OrderError::Confirmed(Uuid::nil()),
            OrderError::Cancelled(Uuid::nil()),
        ] {
            let error = ApiError::from(CommandError::rejected(refusal.code(), refusal.to_string()));
            assert_eq!(
                error.into_response().status(),
                StatusCode::CONFLICT,
                "{refusal}"
            );
        }
        let unknown = OrderError::UnknownUser(Uuid::nil());
        let error = ApiError::from(CommandError::rejected(unknown.code(), unknown.to_string()));
        assert_eq!(
            error.into_response().status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
