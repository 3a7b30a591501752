//! The saga tracker: every order saga as an operator sees it (each step, where the saga
//! stands and which service it waits on) and the sagas stuck in a step, kept from the
//! `orders`, `inventory` and `payments` topics and served over HTTP.
//!
//! - [`config`]: its settings (`--wait-max`).
//! - [`saga`]: the pure model: what each event is as a step of its saga, and how a saga's
//!   state and what it waits for follow from the set of its steps.
//! - `store`: the tracker's own tables (`saga_steps`, `sagas`), read and written.
//! - `projector`: the consumer (group `saga-tracker`) that applies each event exactly once.
//! - `api`: `GET /sagas/{correlation_id}`, `GET /sagas` and `GET /openapi.json`, with
//!   read-your-writes through a command's `position`.
//!
//! Not here: commands (the services) or any event of its own: the tracker only reads. It
//! does not act on a stuck saga either; it shows it.

mod api;
pub mod config;
mod projector;
pub use projector::Projector;
pub mod saga;
mod store;

use eventmart_events::Topic;
use eventmart_runtime::db::{Engine, Migrations};
use eventmart_runtime::projection::{self, Projection, Table};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The projection's name: its consumer group and default database file.
pub const NAME: &str = "saga-tracker";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8204;

/// The saga tracker as the runtime runs, rebuilds and checks it.
#[derive(Debug)]
pub struct ReadModel;

impl Projection for ReadModel {
    const NAME: &'static str = NAME;
    const TOPICS: &'static [Topic] = &[Topic::Orders, Topic::Inventory, Topic::Payments];
    const TABLES: &'static [Table] = &[
        Table {
            name: "sagas",
            key: &["correlation_id"],
            ignore: &[],
        },
        Table {
            name: "saga_steps",
            key: &["correlation_id", "event_id"],
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

/// The tracker's own tables, beside the runtime's.
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
