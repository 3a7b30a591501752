//! The order view: a read model of every order with its saga timeline, and of each
//! customer's orders, kept from the `orders`, `inventory` and `payments` topics and served
//! over HTTP.
//!
//! - [`config`]: its settings (`--wait-max`).
//! - [`view`]: the pure model: an order as readers see it, what each event means for it,
//!   and the rules that make the view the same whatever order events arrive in.
//! - `store`: the view's own tables (`order_view`, `order_timeline`), read and written.
//! - `projector`: the consumer (group `order-view`) that applies each event exactly once.
//! - `api`: `GET /orders/{order_id}`, `GET /users/{user_id}/orders` and `GET /openapi.json`,
//!   with read-your-writes through a command's `position`.
//!
//! Not here: commands (the services) or any event of its own: the projection only reads.

mod api;
pub mod config;
mod projector;
mod store;
pub mod view;

use eventmart_events::Topic;
use eventmart_runtime::db::Migrations;
use eventmart_runtime::service::Service;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The projection's name: its consumer group and default database file.
pub const NAME: &str = "order-view";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8201;

/// The topics it reads.
pub const TOPICS: [Topic; 3] = [Topic::Orders, Topic::Inventory, Topic::Payments];

/// The view's own tables, beside the runtime's.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// Runs the projection on `listener` until `shutdown` is cancelled (or a task fails).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut service = Service::start(NAME, &config.service, migrations(), shutdown).await?;
    service.consume(
        &TOPICS,
        projector::Projector {
            engine: service.db.engine,
        },
    );
    let router = api::router(api::App {
        db: service.db.clone(),
        wait_max: config.wait_max,
    });
    service.serve(listener, router).await
}
