//! The `saga-tracker` binary: parses its settings and runs the projection until SIGTERM.

use clap::Parser;
use eventmart_runtime::process;
use saga_tracker::{Config, DEFAULT_PORT};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let config = Config::parse();
    let listener = config.service.bind(DEFAULT_PORT).await?;
    saga_tracker::run(listener, config, process::shutdown_on_signal()).await
}
