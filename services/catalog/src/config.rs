//! The catalog service's configuration: the settings every service takes, from flags or
//! environment variables. The service has no settings of its own.

use eventmart_runtime::service::ServiceArgs;

/// How the catalog service is run.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "catalog", about = "Products and their prices")]
pub struct Config {
    /// Database, broker, registry, listen address and shutdown settings.
    #[command(flatten)]
    pub service: ServiceArgs,
}
