//! The sales model's settings: the ones every service takes, and its own.

use std::time::Duration;

use eventmart_runtime::service::ServiceArgs;

/// The sales model's settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "sales",
    about = "Sales: revenue and units per product and per day, and the top products over a period"
)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
    /// How long a read that carries a `position` waits for the model to catch up with it
    /// before answering 503 `not_caught_up`.
    #[arg(long, env = "SALES_WAIT_MAX", default_value = "5s", value_parser = humantime::parse_duration)]
    pub wait_max: Duration,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn reads_wait_five_seconds_at_most_unless_told_otherwise() {
        let config = Config::try_parse_from(["sales"]).unwrap();
        assert_eq!(config.wait_max, Duration::from_secs(5));
        let config = Config::try_parse_from(["sales", "--wait-max", "250ms"]).unwrap();
        assert_eq!(config.wait_max, Duration::from_millis(250));
    }
}
