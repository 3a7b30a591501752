//! The inventory's settings: only those every service takes (broker, registry, database,
//! listen address, grace period), each from a flag or its environment variable.

/// The `inventory` binary's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "inventory",
    about = "Stock per product, and order reservations"
)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: eventmart_runtime::service::ServiceArgs,
}
