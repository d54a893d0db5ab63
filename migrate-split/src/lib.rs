//! migrate-split
