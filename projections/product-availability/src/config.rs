//! Product availability's settings: the ones every service takes, and its own.

use std::time::Duration;

use eventmart_runtime::service::ServiceArgs;

/// Product availability's settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "product-availability",
    about = "Product availability: each product's price and its stock available, reserved and sold"
)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
    /// How long a read that carries a `position` waits for the view to catch up with it
    /// before answering 503 `not_caught_up`.
    #[arg(long, env = "PRODUCT_AVAILABILITY_WAIT_MAX", default_value = "5s", value_parser = humantime::parse_duration)]
    pub wait_max: Duration,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn reads_wait_five_seconds_at_most_unless_told_otherwise() {
        let config = Config::try_parse_from(["product-availability"]).unwrap();
        assert_eq!(config.wait_max, Duration::from_secs(5));
        let config =
            Config::try_parse_from(["product-availability", "--wait-max", "250ms"]).unwrap();
        assert_eq!(config.wait_max, Duration::from_millis(250));
    }
}
