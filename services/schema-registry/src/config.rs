//! What the binary is told at start: flags, each also read from an environment variable.

use crate::compat::CompatibilityLevel;

/// The registry's settings. Defaults run locally with nothing set.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "schema-registry",
    version,
    about = "A Confluent-compatible Schema Registry (Avro) over SQLite or PostgreSQL"
)]
pub struct Config {
    /// The address to listen on for HTTP requests (used by the binary; `run` takes a bound
    /// listener instead).
    #[arg(long, env = "SCHEMA_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: String,

    /// Where schemas are stored: `sqlite://path/to/file.db` or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://var/schema-registry.db"
    )]
    pub database_url: String,

    /// The compatibility level in force until one is set with `PUT /config`.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_COMPATIBILITY",
        default_value = "BACKWARD"
    )]
    pub default_compatibility: CompatibilityLevel,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn defaults_run_locally() {
        // given / when
        let config = Config::try_parse_from(["schema-registry"]).unwrap();
        // then
        assert_eq!(config.listen, "127.0.0.1:8081");
        assert_eq!(config.database_url, "sqlite://var/schema-registry.db");
        assert_eq!(config.default_compatibility, CompatibilityLevel::Backward);
    }

    #[test]
    fn flags_override_defaults_and_levels_are_checked() {
        // given / when
        let config = Config::try_parse_from([
            "schema-registry",
            "--default-compatibility",
            "full_transitive",
            "--database-url",
            "postgres://postgres@127.0.0.1/registry",
        ])
        .unwrap();
        let invalid =
            Config::try_parse_from(["schema-registry", "--default-compatibility", "SIDEWAYS"]);
        // then
        assert_eq!(
            config.default_compatibility,
            CompatibilityLevel::FullTransitive
        );
        assert_eq!(
            config.database_url,
            "postgres://postgres@127.0.0.1/registry"
        );
        assert!(invalid.is_err());
    }
}
