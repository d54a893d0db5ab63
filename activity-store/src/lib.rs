//! activity-store
pub mod schema;
pub use schema::SCHEMA;
