//! Sales: revenue and units sold per product and per day, and the products that sold most
//! over a period, kept from the `orders` topic and served over HTTP.
//!
//! - [`config`]: its settings (`--wait-max`).
//! - [`sale`]: the pure model: what each `orders` event says about an order's sale, when an
//!   order counts (placed and confirmed, exactly once) and what it adds to the figures.
//! - `store`: the model's own tables (`sales_orders`, `sales_daily`, `sales_days`), written
//!   and read.
//! - `projector`: the consumer (group `sales`) that applies each event exactly once.
//! - `api`: `GET /sales/daily`, `GET /sales/products/{product_id}`, `GET /sales/top` and
//!   `GET /openapi.json`, with read-your-writes through a command's `position`.
//!
//! Not here: commands (the services) or any event of its own: the projection only reads.
//! Payments are not read either: an order's `order.confirmed` is what makes it a sale.

mod api;
pub mod config;
mod projector;
pub use projector::Projector;
pub mod sale;
mod store;

use eventmart_events::Topic;
use eventmart_runtime::db::{Engine, Migrations};
use eventmart_runtime::projection::{self, Projection, Table};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The projection's name: its consumer group and default database file.
pub const NAME: &str = "sales";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8203;

/// The sales model as the runtime runs, rebuilds and checks it.
#[derive(Debug)]
pub struct ReadModel;

impl Projection for ReadModel {
    const NAME: &'static str = NAME;
    const TOPICS: &'static [Topic] = &[Topic::Orders];
    const TABLES: &'static [Table] = &[
        Table {
            name: "sales_orders",
            key: &["order_id"],
            ignore: &[],
        },
        Table {
            name: "sales_daily",
            key: &["product_id", "day", "currency"],
            ignore: &[],
        },
        Table {
            name: "sales_days",
            key: &["day"],
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

/// The model's own tables, beside the runtime's.
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
