//! The shared event runtime every service, projector and tool runs on.
//!
//! - [`db`]: storage chosen by `DATABASE_URL` (SQLite locally, PostgreSQL in production).
//! - [`kafka`]: client configuration and idempotent topic provisioning.
//! - [`decider`]: the pure `decide`/`evolve` shape of every aggregate.
//! - [`journal`]: appending events with their state change, and the outbox relay to Kafka.
//! - [`command`]: helpers for command endpoints (idempotency keys, position tokens).
//! - [`consumer`]: consumers whose effects apply exactly once, and dead-lettering.
//! - [`dlq`]: dead-letter topics: what goes there, and replaying it.
//! - [`metrics`]: Prometheus metrics.
//! - [`process`]: configuration, shutdown, health and metrics endpoints.
//! - [`http`]: the layer every API answers behind (request id, access log, time and body
//!   limits, request metrics).
//! - [`state`]: a service's current state, one versioned JSON row per aggregate.
//! - [`timers`]: work due at a time (deadlines), fired exactly once.
//! - [`projection`]: read models: run, swap to a rebuilt version, checksum.
//! - [`query`]: what every read model's query API shares (errors, parameters, read-your-writes,
//!   OpenAPI fragments).
//! - [`service`]: what every command service runs: database, relay, consumer, timers, HTTP.
//! - [`testing`]: real brokers, fresh databases and running binaries for integration tests.
//!
//! It is not where event shapes live: those are in `eventmart-events`.

pub mod command;
pub mod consumer;
pub mod db;
pub mod decider;
pub mod dlq;
pub mod http;
pub mod journal;
pub mod kafka;
pub mod metrics;
pub mod process;
pub mod projection;
pub mod query;
pub mod service;
pub mod state;
pub mod testing;
pub mod timers;
