//! The saga tracker's settings: the ones every service takes, and its own.

use std::time::Duration;

use eventmart_runtime::service::ServiceArgs;

/// The saga tracker's settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "saga-tracker",
    about = "The saga tracker: every order saga's steps and where it stands, and the sagas \
             stuck in a step"
)]
pub struct Config {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub service: ServiceArgs,
    /// How long a read that carries a `position` waits for the tracker to catch up with it
    /// before answering 503 `not_caught_up`.
    #[arg(long, env = "SAGA_TRACKER_WAIT_MAX", default_value = "5s", value_parser = humantime::parse_duration)]
    pub wait_max: Duration,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn reads_wait_five_seconds_at_most_unless_told_otherwise() {
        let config = Config::try_parse_from(["saga-tracker"]).unwrap();
        assert_eq!(config.wait_max, Duration::from_secs(5));
        let config = Config::try_parse_from(["saga-tracker", "--wait-max", "250ms"]).unwrap();
        assert_eq!(config.wait_max, Duration::from_millis(250));
    }
}
