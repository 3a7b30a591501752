//! Product availability: a read model of each product's current price and its stock
//! (received, available, reserved, sold), kept from the `catalog` and `inventory` topics and
//! served over HTTP.
//!
//! - [`config`]: its settings (`--wait-max`).
//! - [`view`]: the pure model: a product as readers see it, what each event means for it,
//!   and the rules that make the view the same whatever order events arrive in.
//! - `store`: the view's own tables (`product_availability`,
//!   `product_availability_reservation`, `product_availability_move`), read and written.
//! - `projector`: the consumer (group `product-availability`) that applies each event
//!   exactly once.
//! - `api`: `GET /products`, `GET /products/{product_id}` and `GET /openapi.json`, with
//!   read-your-writes through a command's `position`.
//!
//! Not here: commands (the catalog and inventory services) or any event of its own: the
//! projection only reads.

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
pub const NAME: &str = "product-availability";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8202;

/// Product availability as the runtime runs, rebuilds and checks it.
#[derive(Debug)]
pub struct ReadModel;

impl Projection for ReadModel {
    const NAME: &'static str = NAME;
    const TOPICS: &'static [Topic] = &[Topic::Catalog, Topic::Inventory];
    const TABLES: &'static [Table] = &[
        Table {
            name: "product_availability",
            key: &["product_id"],
            ignore: &[],
        },
        Table {
            name: "product_availability_reservation",
            key: &["order_id"],
            ignore: &[],
        },
        Table {
            name: "product_availability_move",
            key: &["product_id", "event_id"],
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
