//! The payments service: charges and refunds orders through a simulated payment provider.
//!
//! It keeps one payment per order. A charge starts once both `order.created` (who pays, how
//! much, with what) and `inventory.updated` RESERVED for the order are known, in either
//! order, and takes the provider's latency; the provider then answers by its documented,
//! deterministic rules (see [`domain::provider`]):
//!
//! - payment token `tok_decline` → `payment.failed`, reason `card_declined`;
//! - a charge that would take the user's outstanding amount (charged and not refunded, over
//!   all their orders) above the credit limit → `payment.failed`, reason
//!   `insufficient_funds`;
//! - anything else → `payment.completed`.
//!
//! `order.cancelled` refunds a completed charge (`payment.refunded`, reason
//! `order_cancelled`); a charge that completes after the cancellation is refunded in the same
//! transaction; an order cancelled before its charge started is never charged.
//!
//! Modules:
//!
//! - [`config`]: command-line flags and environment variables.
//! - [`domain`]: the pure rules, with their given/when/then tests.
//! - `store`: writing a change to a payment: state, credit, timer and events, in one
//!   transaction.
//! - `reactions`: the consumer of the `payments`, `orders` and `inventory` topics.
//! - [`replay`]: its state as rebuilt from the topics (`eventmart service rebuild payments`).
//! - `charges`: the `charge` timer, when the provider answers.
//! - `api`: the HTTP API.

pub mod config;
pub mod domain;

mod api;
mod charges;
mod reactions;
pub mod replay;
mod store;

use std::time::Duration;

use eventmart_runtime::db::Migrations;
use eventmart_runtime::service::Service;
use eventmart_runtime::service::rebuild::ServiceState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::config::Config;
use crate::domain::{Payments, Provider};
use crate::store::{CHARGE_TIMER, Store};

/// The service's name: its consumer group and default database file.
pub const NAME: &str = "payments";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8105;

/// How often due charges are looked for: a provider latency of zero answers this soon.
const CHARGE_POLL: Duration = Duration::from_millis(20);

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut service = Service::start(NAME, &config.service, Migrations::none, shutdown).await?;
    let store = Store {
        journal: service.journal.clone(),
        provider_latency: config.provider_latency,
    };
    let payments = Payments::new(Provider::new(config.credit_limit_cents));
    service.consume(
        &replay::State::consumed(),
        reactions::Reactions {
            store: store.clone(),
            payments,
        },
    );
    service.timers(
        CHARGE_TIMER,
        CHARGE_POLL,
        charges::Charges {
            store: store.clone(),
            payments,
        },
    );
    let router = api::router(api::App { store, payments });
    service.serve(listener, router).await
}
