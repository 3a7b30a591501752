//! The registry served by `run` on a random port over a fresh database per test, driven
//! through real HTTP. Each scenario runs on SQLite and on PostgreSQL, except the few that
//! only PostgreSQL allows (several instances on one database, a database dropped under the
//! registry).

#[macro_use]
extern crate eventmart_runtime;

mod helpers;

mod compatibility;
mod config;
mod converter;
mod deletion;
mod evolution;
mod identity;
mod instances;
mod lookup;
mod ops;
mod references;
mod routes;
mod validation;
