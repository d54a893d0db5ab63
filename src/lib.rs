//! splitstore: server-side composition of the two stores.
