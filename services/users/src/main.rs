//! The `users` binary: parses its configuration and runs the service until SIGTERM.

use clap::Parser;
use eventmart_runtime::process;
use users::{Config, DEFAULT_PORT};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let config = Config::parse();
    let listener = config.service.bind(DEFAULT_PORT).await?;
    users::run(listener, config, process::shutdown_on_signal()).await
}
