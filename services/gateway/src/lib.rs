//! The query side: reads of the read models.
//!
//! Every read accepts a minimum position and waits, within the call's deadline, until the
//! read model has applied the log up to it, so a client reads its own writes.

pub mod audited;
mod auditors;
mod cases;
pub mod catalog;
mod catalog_service;
mod counts;
pub mod datasets;
mod deadline;
pub mod feeds;
pub mod http;
mod model_read;
mod queue;

pub use auditors::{Auditors, history_event, log_failed, parse_aggregate, valid_time};
pub use cases::CaseQueries;
pub use catalog_service::Catalog;
pub use datasets::Datasets;
pub use deadline::{grpc_timeout, read_wait};
pub use feeds::Feeds;
