//! The inventory's HTTP API: restocks and adjustments (commands), stock and reservations
//! (queries).
//!
//! | route | answer |
//! |---|---|
//! | `POST /stock/{product_id}/restock` `{"quantity"}` | the stock after it, `inventory.updated` RESTOCKED |
//! | `POST /stock/{product_id}/adjust` `{"delta", "reason"}` | the stock after it, `inventory.updated` ADJUSTED |
//! | `GET /stock/{product_id}` | the product's stock |
//! | `GET /stock?after=&limit=` | `{"items", "next"}`, by product id |
//! | `GET /reservations/{order_id}` | `{"order_id", "status", "lines"}` |
//!
//! Errors are `{"error", "message"}` (plus `field` on a 400) with the status saying what to do.

mod commands;
mod queries;

use axum::Router;
use axum::routing::{get, post};
use eventmart_runtime::command::CommandError;
use eventmart_runtime::journal::Journal;
use uuid::Uuid;

use crate::domain::DomainError;

/// What every handler shares.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The service's journal (and through it, its database).
    pub(crate) journal: Journal,
}

/// The API's routes.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/stock", get(queries::list_stock))
        .route("/stock/{product_id}", get(queries::get_stock))
        .route("/stock/{product_id}/restock", post(commands::restock))
        .route("/stock/{product_id}/adjust", post(commands::adjust))
        .route("/reservations/{order_id}", get(queries::get_reservation))
        .with_state(app)
}

/// The id in path or query parameter `field`, or a 400 naming it.
fn parse_id(field: &str, text: &str) -> Result<Uuid, CommandError> {
    Uuid::parse_str(text)
        .map_err(|_| CommandError::invalid_field(field, format!("must be a UUID, got {text:?}")))
}

/// How a refused command is answered.
fn refused(error: DomainError) -> CommandError {
    match error {
        DomainError::UnknownProduct(_) => CommandError::NotFound(error.to_string()),
        DomainError::InsufficientStock { .. } => {
            CommandError::rejected("insufficient_stock", error.to_string())
        }
        DomainError::InvalidOrder { .. } | DomainError::NothingReserved { .. } => {
            CommandError::Internal(format!("a stock command was refused as {error}"))
        }
    }
}
