//! The users service: customer accounts. It registers users and changes their profiles over
//! HTTP, emitting `user.registered` and `user.updated` on the `users` topic, and keeps each
//! email address to one user.
//!
//! - [`config`]: how it is run.
//! - [`domain`]: valid emails and names, and the rules of registering and updating (pure).
//! - `api`: the HTTP endpoints `POST /users`, `PATCH /users/{user_id}`, `GET /users/{user_id}`.
//! - `reactions`: events on its own topic that it did not append (kcat) folded into its state.
//! - [`replay`]: its state as rebuilt from the topics (`eventmart service rebuild users`).

mod api;
pub mod config;
pub mod domain;
mod reactions;
pub mod replay;

use eventmart_runtime::db::Migrations;
use eventmart_runtime::service::Service;
use eventmart_runtime::service::rebuild::ServiceState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// The service's name: its consumer group and default database file.
pub const NAME: &str = "users";

/// The port it listens on by default.
pub const DEFAULT_PORT: u16 = 8101;

/// Runs the service on `listener` until `shutdown` is cancelled or a task fails.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut service = Service::start(NAME, &config.service, Migrations::none, shutdown).await?;
    let journal = service.journal.clone();
    service.consume(
        &replay::State::consumed(),
        reactions::Reactions {
            journal: journal.clone(),
        },
    );
    service
        .serve(listener, api::router(api::App { journal }))
        .await
}
