//! The `catalog` binary: parses its configuration and runs the service until SIGTERM.

use catalog::{Config, DEFAULT_PORT};
use clap::Parser;
use eventmart_runtime::process;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let config = Config::parse();
    let listener = config.service.bind(DEFAULT_PORT).await?;
    catalog::run(listener, config, process::shutdown_on_signal()).await
}
