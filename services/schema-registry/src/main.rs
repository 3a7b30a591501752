//! The `schema-registry` binary: reads its settings, binds the listener and runs the registry
//! until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use eventmart_runtime::process;
use schema_registry::Config;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    process::init_logging();
    let config = Config::parse();
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    schema_registry::run(listener, config, process::shutdown_on_signal()).await?;
    Ok(())
}
