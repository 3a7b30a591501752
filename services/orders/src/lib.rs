//! The orders service: customers place and cancel orders over HTTP, and the order saga's
//! outcome is decided here from what inventory and payments report.
//!
//! - [`config`]: the service's settings (`--deadline`).
//! - [`domain`]: the pure rules: parsed requests, the order decider, user and product
//!   replicas.
//! - `record`: what is stored per order and how a decision is recorded (state, journal,
//!   deadline) in one transaction.
//! - `api`: `POST /orders`, `POST /orders/{order_id}/cancel`, `GET /orders/{order_id}`,
//!   `GET /orders`.
//! - `reactions`: the consumer of `orders`, `users`, `catalog`, `inventory` and `payments`.
//! - [`replay`]: its state as rebuilt from the topics (`eventmart service rebuild orders`).
//! - `deadline`: cancels orders still pending when their deadline fires.
//!
//! Not here: stock and payments (the inventory and payments services), or reports over
//! orders (read models).

mod api;
pub mod config;
mod deadline;
pub mod domain;
mod reactions;
mod record;
pub mod replay;

use std::time::Duration;

use eventmart_runtime::db::Migrations;
use eventmart_runtime::service::Service;
use eventmart_runtime::service::rebuild::ServiceState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The service's name: its consumer group and default database file.
pub const NAME: &str = "orders";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8104;

/// How often due deadlines are looked for.
const DEADLINE_POLL: Duration = Duration::from_millis(100);

/// Runs the service on `listener` until `shutdown` is cancelled (or a task fails).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut service = Service::start(NAME, &config.service, Migrations::none, shutdown).await?;
    service.consume(
        &replay::State::consumed(),
        reactions::Reactions {
            journal: service.journal.clone(),
            deadline: config.deadline,
        },
    );
    service.timers(
        record::DEADLINE,
        DEADLINE_POLL,
        deadline::Deadlines {
            journal: service.journal.clone(),
        },
    );
    let router = api::router(api::App {
        journal: service.journal.clone(),
        deadline: config.deadline,
    });
    service.serve(listener, router).await
}
