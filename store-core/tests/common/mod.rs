//! Shared by store-core's integration tests: a small schema with a rebuild step, and child processes.
#![allow(dead_code)]

use store_core::schema::{ACTIVITY_APPLICATION_ID, CONFIG_APPLICATION_ID};
use store_core::{Migration, Schema, Step};

pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "items and tags",
        step: Step::Sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE tags (id INTEGER PRIMARY KEY,
                                item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
                                tag TEXT NOT NULL);
             CREATE INDEX tags_item ON tags(item_id);",
        ),
    },
    Migration {
        version: 2,
        name: "item color",
        step: Step::Sql("ALTER TABLE items ADD COLUMN color TEXT;"),
    },
    Migration {
        version: 3,
        name: "color not null (rebuild)",
        step: Step::Rebuild(
            "CREATE TABLE new_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, color TEXT NOT NULL DEFAULT 'none');
             INSERT INTO new_items (id, name, color) SELECT id, name, coalesce(color, 'none') FROM items;
             DROP TABLE items;
             ALTER TABLE new_items RENAME TO items;",
        ),
    },
];

/// Stands in for activity.db in engine tests (same application_id, so identity checks are the real ones).
pub static ITEMS: Schema = Schema {
    file_name: "activity.db",
    owner: "the daemon",
    owner_command: "splitstore daemon",
    application_id: ACTIVITY_APPLICATION_ID,
    migrations: MIGRATIONS,
    incremental_vacuum: true,
};

/// A second kind, with config.db's application_id.
pub static OTHER: Schema = Schema {
    file_name: "config.db",
    owner: "the server",
    owner_command: "splitstore server",
    application_id: CONFIG_APPLICATION_ID,
    migrations: MIGRATIONS.split_at(1).0,
    incremental_vacuum: false,
};

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use store_core::testing::{CHILD_ROLE, file_mode as mode, kill9, spawn_child, wait_for_file, wait_within};
