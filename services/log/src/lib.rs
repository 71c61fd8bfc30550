//! The hub's adapter to NATS JetStream.
//!
//! - [`names`]: every stream, subject, consumer and header name, built in one place.
//! - [`envelope`]: CloudEvents 1.0 attributes as `ce-*` headers (binary mode).
//! - [`stream`]: creates or updates `GOV_EVENTS` and checks its settings.
//! - [`guard`]: refuses a server whose settings could lose acknowledged events.
//! - [`append`]: appends events with `Nats-Msg-Id` and the expected subject sequence.
//! - [`group`]: group commit, concurrent commands appended together as atomic batches.
//! - [`stored`]: an event read back from the log, upcast to the current version of its type.
//! - [`read`]: one aggregate's events read back in batches, and where the log ends.
//! - [`server`]: starts and stops a real `nats-server` process (the hub's child, the tests' servers).
//! - [`feeds`]: each department's feed stream and the durable consumer it binds to.
//! - [`accounts`]: the NATS accounts that keep the departments apart, rendered for nats-server.
//! - [`credentials`]: the NKeys of the hub's and the departments' NATS users.
//! - [`lease`]: which instance does a once-per-hub duty (supervision, sending feeds).

pub mod accounts;
pub mod append;
pub mod credentials;
pub mod envelope;
pub mod feeds;
pub mod group;
pub mod guard;
pub mod lease;
pub mod names;
pub mod read;
pub mod server;
pub mod stored;
pub mod stream;

pub use append::{AppendError, Appender, NewEvent};
pub use envelope::{Classification, Envelope};
pub use group::{GroupCommit, GroupOptions};
pub use stored::{AsStored, Entry, StoredEvent, Unreadable};
