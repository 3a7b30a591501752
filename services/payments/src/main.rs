//! The `payments` binary: see the library's documentation.

use clap::Parser;
use eventmart_runtime::process;
use payments::{Config, DEFAULT_PORT};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let config = Config::parse();
    let listener = config.service.bind(DEFAULT_PORT).await?;
    payments::run(listener, config, process::shutdown_on_signal()).await
}
