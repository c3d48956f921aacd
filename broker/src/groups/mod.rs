//! Consumer groups: the classic protocol's state machine (`classic`), the
//! persisted form of groups and offsets (`records`), and the coordinator
//! runtime that shards, times and persists them (`coordinator`).

pub mod assignor;
pub mod classic;
mod classic_messages;
pub mod consumer;
pub mod consumer_runtime;
pub mod coordinator;
pub mod embedded;
pub mod mixed;
mod mixed_runtime;
pub mod records;
pub mod retention;
pub mod views;

pub use coordinator::{Committer, CoordinatorSettings, GroupCoordinator};
pub use views::{GroupDescription, GroupListing, MemberDescription};
