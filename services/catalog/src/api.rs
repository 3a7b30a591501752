//! The HTTP API: create a product, change its price, show a product.
//!
//! Each command runs in one transaction (see [`run_command`]): claim the SKU, decide, save
//! the product, append the events. Not here: the rules themselves (`domain`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use eventmart_events::{Envelope, Event, timestamp};
use eventmart_runtime::command::{
    Accepted, CommandError, CommandResponse, idempotency_key, parse_body, run_command,
};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::{Appended, ExpectedVersion, Journal};
use eventmart_runtime::state::{self, Versioned};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AnyConnection;
use uuid::Uuid;

use crate::domain::{
    Catalog, CatalogError, ChangePrice, Command, CreateProduct, PRODUCT, Price, Product,
    ProductName, SKU, Sku,
};

/// What the handlers share.
#[derive(Clone, Debug)]
pub(crate) struct App {
    /// The service's journal (and, through it, its database).
    pub(crate) journal: Journal,
}

/// The routes of the catalog API.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/products", post(create))
        .route("/products/{product_id}", get(show))
        .route("/products/{product_id}/price", put(change_price))
        .with_state(app)
}

/// `POST /products` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    sku: String,
    name: String,
    price: PriceRequest,
}

/// `PUT /products/{product_id}/price` body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePriceRequest {
    price: PriceRequest,
}

/// A price as sent: `{"cents": 1999, "currency": "EUR"}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceRequest {
    cents: i64,
    currency: String,
}

impl PriceRequest {
    /// The price, or 400 naming `price.cents` or `price.currency`.
    fn parse(&self) -> Result<Price, CommandError> {
        Price::parse(self.cents, &self.currency).map_err(|e| {
            CommandError::invalid_field(format!("price.{}", e.field), e.reason.to_string())
        })
    }
}

impl From<CatalogError> for CommandError {
    fn from(error: CatalogError) -> Self {
        match &error {
            CatalogError::SkuTaken { .. } => CommandError::refused("sku_taken", error.to_string()),
            CatalogError::NotFound(_) => CommandError::NotFound(error.to_string()),
            CatalogError::AlreadyCreated(_) => {
                CommandError::refused("already_created", error.to_string())
            }
            CatalogError::ForeignEvent(_) => CommandError::Internal(error.to_string()),
        }
    }
}

async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let request: CreateRequest = parse_body(&body)?;
    let sku =
        Sku::parse(&request.sku).map_err(|e| CommandError::invalid_field("sku", e.to_string()))?;
    let name = ProductName::parse(&request.name)
        .map_err(|e| CommandError::invalid_field("name", e.to_string()))?;
    let price = request.price.parse()?;
    let fingerprint = [b"POST /products\n".as_slice(), &body].concat();
    let response = run_command(
        &app.journal,
        idempotency_key(&headers)?,
        &fingerprint,
        |tx| {
            let (journal, sku, name) = (app.journal.clone(), sku.clone(), name.clone());
            Box::pin(async move {
                let product_id = Uuid::now_v7();
                let holder = state::claim(tx, SKU, sku.as_str(), &product_id.to_string()).await?;
                let sku_holder = Uuid::parse_str(&holder).map_err(|_| {
                    CommandError::Internal(format!(
                        "SKU claim held by {holder:?}, not a product id"
                    ))
                })?;
                let command = Command::Create(CreateProduct {
                    product_id,
                    sku,
                    name,
                    price,
                    sku_holder: Some(sku_holder),
                    at: timestamp::now(),
                });
                let current = Versioned::default();
                let (product, appended) =
                    execute(tx, &journal, product_id, current, &command).await?;
                let body = json!({
                    "product_id": product.product_id,
                    "sku": product.sku,
                    "name": product.name,
                    "price": product.price,
                });
                Ok(answer(Accepted::created(body), appended))
            })
        },
    )
    .await?;
    Ok(response)
}

async fn change_price(
    State(app): State<App>,
    Path(product_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let product_id = parse_product_id(&product_id)?;
    let request: ChangePriceRequest = parse_body(&body)?;
    let price = request.price.parse()?;
    let fingerprint = [
        format!("PUT /products/{product_id}/price\n").as_bytes(),
        &body,
    ]
    .concat();
    let response = run_command(
        &app.journal,
        idempotency_key(&headers)?,
        &fingerprint,
        |tx| {
            let journal = app.journal.clone();
            Box::pin(async move {
                let current = state::load(tx, PRODUCT, &product_id.to_string()).await?;
                let command = Command::ChangePrice(ChangePrice {
                    product_id,
                    price,
                    at: timestamp::now(),
                });
                let (product, appended) =
                    execute(tx, &journal, product_id, current, &command).await?;
                let body = json!({ "product_id": product.product_id, "price": product.price });
                Ok(answer(Accepted::ok(body), appended))
            })
        },
    )
    .await?;
    Ok(response)
}

async fn show(
    State(app): State<App>,
    Path(product_id): Path<String>,
) -> Result<Json<Value>, CommandError> {
    let product_id = parse_product_id(&product_id)?;
    let mut conn = app
        .journal
        .db()
        .pool
        .acquire()
        .await
        .map_err(CommandError::from)?;
    let product: Versioned<Option<Product>> =
        state::load(&mut conn, PRODUCT, &product_id.to_string())
            .await
            .map_err(CommandError::from)?;
    let product = product
        .state
        .ok_or(CommandError::from(CatalogError::NotFound(product_id)))?;
    Ok(Json(json!(product)))
}

/// The product id of a path, or 400 naming `product_id`.
fn parse_product_id(raw: &str) -> Result<Uuid, CommandError> {
    Uuid::parse_str(raw).map_err(|_| {
        CommandError::invalid_field("product_id", format!("must be a UUID, got {raw:?}"))
    })
}

/// Decides `command` on the product as read (`current`), saves the product it leaves, and
/// appends its events, each starting its own flow. Returns the product after the command and
/// what was appended (`None` when the command changed nothing).
async fn execute(
    tx: &mut AnyConnection,
    journal: &Journal,
    product_id: Uuid,
    current: Versioned<Option<Product>>,
    command: &Command,
) -> Result<(Product, Option<Appended>), CommandError> {
    let id = product_id.to_string();
    let events = Catalog.decide(&current.state, command)?;
    let after = events
        .iter()
        .fold(current.state, |s, e| Catalog.evolve(s, e));
    let product = after.clone().ok_or_else(|| {
        CommandError::Internal(format!("product {id} has no state after {command:?}"))
    })?;
    if events.is_empty() {
        return Ok((product, None));
    }
    state::save(tx, PRODUCT, &id, current.version, &after).await?;
    let events: Vec<(Event, Envelope)> = events
        .into_iter()
        .map(|event| {
            let envelope = Envelope::new(&event);
            (event, envelope)
        })
        .collect();
    let appended = journal
        .append(tx, &id, ExpectedVersion::Any, events)
        .await?;
    Ok((product, Some(appended)))
}

/// `accepted` with the events of `appended`, if any.
fn answer(accepted: Accepted, appended: Option<Appended>) -> Accepted {
    appended.iter().fold(accepted, Accepted::appended)
}
