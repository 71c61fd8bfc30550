//! The hub server as a library: `run` takes its configuration, a bound listener and a
//! shutdown future, so the binary and the tests start it the same way.

mod admin;
pub mod allocator;
pub mod audit_cli;
pub mod backup;
pub mod config;
mod connections;
mod console;
pub mod dev_ca;
mod duties;
mod health;
pub mod identity;
mod metrics;
mod model_control;
pub mod nats_accounts;
mod nats_child;
pub mod proto_json;
mod read_models;
mod reference;
mod run;
mod secrets;
mod serve;
mod tls;

pub use config::Config;
pub use nats_child::ChildNats;
pub use read_models::{compressed, dataset_projections, read_model_dir};
pub use reference::load_registry;
pub use run::{RunOptions, Started, run, run_with, run_with_clock};
