//! Outbound delivery (SPEC §7): the outbox worker claims due items, hands their bytes to a
//! transport and records the outcome, retrying transient failures with backoff.
//!
//! - [`transport`]: smtp (pooled), file and sendmail, each failure transient or permanent;
//! - [`backoff`]: the pure retry schedule;
//! - `render`: items stored as decisions are rendered and sealed just before sending;
//! - [`worker`]: `send_due` (one pass, for `casegate outbox send`) and `run` (the daemon task).

pub mod backoff;
pub(crate) mod render;
pub mod transport;
pub mod worker;

pub use transport::{Envelope, SendError, Transport, TransportConfigError};
pub use worker::{run, send_due, SendSummary};
