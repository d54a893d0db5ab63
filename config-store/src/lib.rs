//! config-store
pub mod schema;
pub use schema::SCHEMA;
