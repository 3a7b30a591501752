//! The registry served by `run` on a random port over a fresh database per test, driven
//! through real HTTP. Each scenario runs on SQLite and on PostgreSQL.

#[macro_use]
extern crate eventmart_runtime;

mod helpers;

mod compatibility;
mod config;
mod converter;
mod deletion;
mod evolution;
mod identity;
mod lookup;
mod references;
mod routes;
mod validation;
