//! splitstore: the server-side composition of the two stores, and operations on a whole data directory.
//!
//! - [`health`]: the facts `splitstore doctor` prints, as serde data for a UI banner.
//! - [`operations`]: backup, restore and repair of both databases.

pub mod health;
pub mod operations;

use store_core::Schema;

/// The two databases of a data directory, in the order they are reported.
pub const DATABASES: [&Schema; 2] = [&activity_store::SCHEMA, &config_store::SCHEMA];
