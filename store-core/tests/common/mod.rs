//! Shared by store-core's integration tests: a small schema with a rebuild step, and child processes.
#![allow(dead_code)]

use store_core::{Compat, Migration, Schema, Step, Tools};

/// application_id of the test kind standing in for activity.db ("ITEM").
pub const ITEMS_APPLICATION_ID: i32 = 0x4954_454D;
/// application_id of the second test kind ("OTHR").
pub const OTHER_APPLICATION_ID: i32 = 0x4F54_4852;

pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "items and tags",
        compat: Compat::Breaking,
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
        compat: Compat::Additive,
        step: Step::Sql("ALTER TABLE items ADD COLUMN color TEXT;"),
    },
    Migration {
        version: 3,
        name: "color not null (rebuild)",
        compat: Compat::Breaking,
        step: Step::Rebuild(
            "CREATE TABLE new_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, color TEXT NOT NULL DEFAULT 'none');
             INSERT INTO new_items (id, name, color) SELECT id, name, coalesce(color, 'none') FROM items;
             DROP TABLE items;
             ALTER TABLE new_items RENAME TO items;",
        ),
    },
];

/// Stands in for a real kind in engine tests.
pub static ITEMS: Schema = ITEMS_KIND;

/// [`ITEMS`] as a value, for tests that declare a variant of it (other migrations: an older build, an
/// edited release).
pub const ITEMS_KIND: Schema = Schema {
    file_name: "activity.db",
    owner: "the daemon",
    tools: Tools {
        program: "splitstore",
        owner_subcommand: "daemon",
    },
    application_id: ITEMS_APPLICATION_ID,
    migrations: MIGRATIONS,
    incremental_vacuum: true,
    may_start_empty: true,
    predecessor: Some(store_core::Predecessor {
        file_name: "legacy.db",
        versions: (1, 3),
        converter: "migrate-split",
        converter_temp_prefix: ".split-tmp-",
        converter_rejects: "split-rejects.jsonl",
    }),
    id_references: &[],
    derived_tables: &[],
    derived_check: None,
    append_only_tables: &[],
    readers_read_from: None,
};

/// A second kind.
pub static OTHER: Schema = Schema {
    file_name: "config.db",
    owner: "the server",
    tools: Tools {
        program: "splitstore",
        owner_subcommand: "server",
    },
    application_id: OTHER_APPLICATION_ID,
    migrations: MIGRATIONS.split_at(1).0,
    incremental_vacuum: false,
    may_start_empty: false,
    predecessor: None,
    id_references: &[],
    derived_tables: &[],
    derived_check: None,
    append_only_tables: &[],
    readers_read_from: None,
};

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use store_core::testing::{
    CHILD_ROLE, child_role, count_rows, file_mode as mode, kill9, query_column, query_i64, read_only, spawn_child,
    wait_for_file, wait_within,
};
