//! The service's configuration: the settings every service takes, and the simulated
//! provider's.

use std::time::Duration;

use eventmart_runtime::service::ServiceArgs;

/// Charges and refunds through a simulated payment provider.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "payments", version, about)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
    /// How long a charge takes at the provider, e.g. `0ms`, `250ms`, `2s`.
    #[arg(
        long,
        env = "PAYMENTS_PROVIDER_LATENCY",
        default_value = "0ms",
        value_parser = humantime::parse_duration
    )]
    pub provider_latency: Duration,
    /// The most a user may have charged and not refunded at once, in minor units (cents).
    #[arg(
        long = "credit-limit",
        env = "PAYMENTS_CREDIT_LIMIT_CENTS",
        default_value_t = 1_000_000,
        value_parser = clap::value_parser!(i64).range(0..)
    )]
    pub credit_limit_cents: i64,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_provider_answers_at_once_with_a_limit_of_a_million_cents_by_default() {
        let config = Config::try_parse_from(["payments"]).unwrap();
        assert_eq!(config.provider_latency, Duration::ZERO);
        assert_eq!(config.credit_limit_cents, 1_000_000);
    }

    #[test]
    fn latency_is_a_human_duration_and_the_limit_is_not_negative() {
        let config = Config::try_parse_from([
            "payments",
            "--provider-latency",
            "2s",
            "--credit-limit",
            "5",
        ])
        .unwrap();
        assert_eq!(config.provider_latency, Duration::from_secs(2));
        assert_eq!(config.credit_limit_cents, 5);
        assert!(Config::try_parse_from(["payments", "--credit-limit", "-1"]).is_err());
    }
}
