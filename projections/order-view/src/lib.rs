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
pub use projector::Projector;
mod store;
pub mod view;

use eventmart_events::Topic;
use eventmart_runtime::db::{Engine, Migrations};
use eventmart_runtime::projection::{self, Projection, Table};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The projection's name: its consumer group and default database file.
pub const NAME: &str = "order-view";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8201;

/// The order view as the runtime runs, rebuilds and checks it.
#[derive(Debug)]
pub struct ReadModel;

impl Projection for ReadModel {
    const NAME: &'static str = NAME;
    const TOPICS: &'static [Topic] = &[Topic::Orders, Topic::Inventory, Topic::Payments];
    const TABLES: &'static [Table] = &[
        Table {
            name: "order_view",
            key: &["order_id"],
            ignore: &[],
        },
        Table {
            name: "order_timeline",
            key: &["order_id", "event_id"],
            ignore: &[],
        },
    ];
    type Handler = projector::Projector;

    fn migrations() -> Migrations {
        migrations()
    }

    fn handler(engine: Engine) -> Self::Handler {
        projector::Projector { engine }
    }
}

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
    let wait_max = config.wait_max;
    projection::serve::<ReadModel>(
        &config.service,
        listener,
        |live| api::router(api::App { live, wait_max }),
        shutdown,
    )
    .await
}
