//! The shared event runtime every service, projector and tool runs on.
//!
//! - [`db`]: storage chosen by `DATABASE_URL` (SQLite locally, PostgreSQL in production).
//! - [`kafka`]: client configuration and idempotent topic provisioning.
//! - [`decider`]: the pure `decide`/`evolve` shape of every aggregate.
//! - [`metrics`]: Prometheus metrics.
//! - [`process`]: configuration, shutdown, health and metrics endpoints.
//! - [`testing`]: real brokers and fresh databases for integration tests.
//!
//! It is not where event shapes live: those are in `eventmart-events`.

pub mod db;
pub mod decider;
pub mod kafka;
pub mod metrics;
pub mod process;
pub mod testing;
