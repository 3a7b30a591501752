//! The inventory service: stock per product, and the reservations orders make against it.
//!
//! It keeps a stock row per product (created when the catalog announces the product) and a
//! reservation per order. Restocks and adjustments come over HTTP; reservations are the
//! service's part of the order saga: it reserves an order's lines on `order.created` (all or
//! none), releases them on `order.cancelled` and sells them on `order.confirmed`. Stock
//! changes typed into its own topic are accepted as facts.
//!
//! - [`config`]: the binary's settings.
//! - [`domain`]: the rules, pure, with their given/when/then tests.
//! - `store`: reading and writing the rows a decision touches, at versions.
//! - `api`: the HTTP commands and queries.
//! - `reactions`: what the service does on events from orders, catalog and its own topic.
//! - [`replay`]: its state as rebuilt from the topics (`eventmart service rebuild inventory`).
//!
//! Not here: what other services know; the inventory learns products and orders only from
//! their events.

use eventmart_runtime::db::Migrations;
use eventmart_runtime::service::Service;
use eventmart_runtime::service::rebuild::ServiceState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod api;
pub mod config;
pub mod domain;
mod reactions;
pub mod replay;
mod store;

use crate::config::Config;

/// The service's name: its consumer group and default database file.
pub const NAME: &str = "inventory";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8103;

/// Runs the service on `listener` until `shutdown` is cancelled (or a task fails).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut service = Service::start(NAME, &config.service, Migrations::none, shutdown).await?;
    service.consume(
        &replay::State::consumed(),
        reactions::Reactions::new(service.journal.clone()),
    );
    let router = api::router(api::App {
        journal: service.journal.clone(),
    });
    service.serve(listener, router).await
}
