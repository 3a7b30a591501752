//! The orders service's settings: the ones every service takes, and its own.

use std::time::Duration;

use eventmart_runtime::service::ServiceArgs;

/// The orders service's settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "orders", about = "Orders and the order saga's outcome")]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
    /// How long an order may stay PENDING before it is cancelled with reason `timeout`.
    #[arg(long, env = "ORDERS_DEADLINE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
}
