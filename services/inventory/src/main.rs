//! The `inventory` binary: reads its settings and runs the service until SIGTERM.

use clap::Parser;
use eventmart_runtime::process;
use inventory::DEFAULT_PORT;
use inventory::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let config = Config::parse();
    let listener = config.service.bind(DEFAULT_PORT).await?;
    inventory::run(listener, config, process::shutdown_on_signal()).await
}
