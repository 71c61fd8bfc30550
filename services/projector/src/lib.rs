//! The projector: builds each read model from the log.
//!
//! Each read model has its own durable pull consumer, its own sled database and its own
//! task. A batch of events is applied and the rows and the new checkpoint are written in one
//! atomic sled batch, visible to reads at once; sled makes it durable on its own timer
//! (`hub_store::FLUSH_EVERY_MS`), never on the projection's path. A crash loses at most the
//! latest whole batches, rows and checkpoint together, so it neither loses nor double-applies
//! an event: on every start the consumer is recreated to deliver from the durable checkpoint
//! + 1, so an ack floor that ran ahead can never skip an event.

mod alarm;
pub mod case_queue;
pub mod command_state;
pub mod datasets;
pub mod feed;
mod model;
mod projection;
pub mod replay;
mod runner;

pub use alarm::Alarms;
pub use model::{ModelState, ReadModel, WaitError};
pub use projection::{Projection, ProjectionError};
pub use runner::{ProjectorError, ProjectorOptions, apply_entries, run};
