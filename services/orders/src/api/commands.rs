//! `POST /orders` and `POST /orders/{order_id}/cancel`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use eventmart_events::{Cause, Envelope, Event, timestamp};
use eventmart_runtime::command::{
    Accepted, CommandError, CommandResponse, idempotency_key, parse_body, run_command,
};
use eventmart_runtime::decider::Decider;
use eventmart_runtime::journal::ExpectedVersion;
use eventmart_runtime::state;
use serde::Deserialize;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::{App, parse_order_id, view};
use crate::domain::{Command, OrderDecider, OrderError, OrderRequest, PlaceOrder, Product};
use crate::record::{self, RecordError};

/// The body of `POST /orders`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceOrderBody {
    user_id: String,
    lines: Vec<LineBody>,
    #[serde(default)]
    payment_token: Option<String>,
}

/// One line of [`PlaceOrderBody`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    product_id: String,
    quantity: i64,
}

/// `POST /orders`: places an order (201 with the order), starting its flow with
/// `order.created`.
pub(super) async fn place(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<CommandResponse, CommandError> {
    let request: PlaceOrderBody = parse_body(&body)?;
    let lines: Vec<(&str, i64)> = request
        .lines
        .iter()
        .map(|line| (line.product_id.as_str(), line.quantity))
        .collect();
    let request = OrderRequest::parse(&request.user_id, &lines, request.payment_token.as_deref())
        .map_err(|e| CommandError::invalid_field(e.field, e.reason))?;
    let key = idempotency_key(&headers)?;
    let fingerprint = [b"POST /orders\n".as_slice(), &body].concat();
    let order_id = Uuid::now_v7();
    let at = timestamp::now();
    run_command(&app.journal, key, &fingerprint, |tx| {
        let (app, request) = (app.clone(), request.clone());
        Box::pin(async move { place_in(&app, tx, order_id, request, at).await })
    })
    .await
}

/// Places order `order_id` through `tx`.
async fn place_in(
    app: &App,
    tx: &mut AnyConnection,
    order_id: Uuid,
    request: OrderRequest,
    at: DateTime<Utc>,
) -> Result<Accepted, CommandError> {
    let user_known = state::exists(tx, record::USER, &request.user_id.to_string()).await?;
    let products: Vec<Uuid> = request.lines.iter().map(|l| l.product_id).collect();
    let mut prices = BTreeMap::new();
    for line in &request.lines {
        let product =
            state::load::<Option<Product>>(tx, record::PRODUCT, &line.product_id.to_string())
                .await?
                .state;
        if let Some(product) = product {
            prices.insert(product.product_id, product.price);
        }
    }
    let command = Command::PlaceOrder(PlaceOrder {
        order_id,
        request,
        user_known,
        prices,
        at,
    });
    let events: Vec<(Event, Envelope)> = OrderDecider
        .decide(&None, &command)
        .map_err(|refusal| refused_field(refusal, &products))?
        .into_iter()
        .map(|event| {
            let envelope = Envelope::new(&event);
            (event, envelope)
        })
        .collect();
    let (Some(order), Some((_, created))) = (
        events
            .iter()
            .fold(None, |state, (event, _)| OrderDecider.evolve(state, event)),
        events.first(),
    ) else {
        return Err(CommandError::Internal(
            "placing an order produced no order".to_owned(),
        ));
    };
    record::create_order(tx, order.clone(), Cause::from(created), app.deadline, at).await?;
    let appended = app
        .journal
        .append(tx, &order_id.to_string(), ExpectedVersion::NoStream, events)
        .await?;
    Ok(Accepted::created(view(&order)).appended(&appended))
}

/// `POST /orders/{order_id}/cancel`: the customer cancels a pending order (200 with the
/// order), continuing its flow with `order.cancelled`.
pub(super) async fn cancel(
    State(app): State<App>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Result<CommandResponse, CommandError> {
    let order_id = parse_order_id(&order_id)?;
    let key = idempotency_key(&headers)?;
    let fingerprint = format!("POST /orders/{order_id}/cancel");
    let command = Command::CancelOrder {
        at: timestamp::now(),
    };
    run_command(&app.journal, key, fingerprint.as_bytes(), |tx| {
        let (journal, command) = (app.journal.clone(), command.clone());
        Box::pin(async move {
            let envelope = |event: &_, cause: &_| Envelope::reacting_to(event, cause, "cancel");
            let done = record::transition(&journal, tx, order_id, &command, envelope).await?;
            let accepted = Accepted::ok(view(&done.order));
            Ok(match &done.appended {
                Some(appended) => accepted.appended(appended),
                None => accepted,
            })
        })
    })
    .await
}

/// A refusal to place an order, naming the request field it is about when there is one.
fn refused_field(refusal: OrderError, products: &[Uuid]) -> CommandError {
    let field = match &refusal {
        OrderError::UnknownUser(_) => Some("user_id".to_owned()),
        OrderError::UnknownProduct(id) => products
            .iter()
            .position(|p| p == id)
            .map(|i| format!("lines[{i}].product_id")),
        _ => None,
    };
    let error = CommandError::from(RecordError::from(refusal));
    match field {
        Some(field) => error.about_field(field),
        None => error,
    }
}
