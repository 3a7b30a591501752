//! The view's tables (migration `0001_product_availability.sql`):
//!
//! - [`products`]: `product_availability`, one row per product, what the API serves;
//! - [`stock`]: `product_availability_reservation`, each order's reservation, and
//!   `product_availability_move`, what each `inventory.updated` moved for each product.
//!
//! The projector writes them inside the consumer's transaction; the API reads the first.
//! The same SQL runs on SQLite and PostgreSQL.

pub(crate) mod products;
pub(crate) mod stock;

use chrono::{DateTime, Utc};
use eventmart_runtime::consumer::HandlerError;
use eventmart_runtime::query::QueryError;
use uuid::Uuid;

/// Why the tables could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored row does not decode: a bug or a hand-edited database. Rebuild the view.
    #[error("{table} row {key}: does not decode: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key (as stored).
        key: String,
        /// What is wrong with the row.
        reason: String,
    },
}

impl From<StoreError> for QueryError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Database(error) => QueryError::from(error),
            StoreError::Corrupt { .. } => QueryError::Internal(error.to_string()),
        }
    }
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Database(error) => HandlerError::from(error),
            StoreError::Corrupt { .. } => HandlerError::permanent(error),
        }
    }
}

fn parse_uuid(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text).map_err(|e| format!("{text:?} is not a UUID: {e}"))
}

fn millis(value: i64) -> Result<DateTime<Utc>, String> {
    eventmart_events::timestamp::from_millis(value)
        .ok_or_else(|| format!("{value} is not a timestamp"))
}
