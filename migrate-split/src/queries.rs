//! The SQL of the split, and the table map it is built from: every legacy table this tool knows, the
//! output it goes to, and where each output column comes from. The output tables are the ones
//! `activity_store::SCHEMA` and `config_store::SCHEMA` create (this module only names their columns); the
//! legacy tables are `legacy/v1.sql`..`v3.sql`.

/// Which output file a table goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Activity,
    Config,
}

/// How a table's rows are keyed, in the legacy file and in its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// `id INTEGER PRIMARY KEY`: a legacy column, copied as it is.
    Id,
    /// A table keyed by text (`settings`): the rowid is copied so the output rows keep the legacy order,
    /// and names the row in the rejects file.
    Rowid,
}

impl Key {
    pub fn sql(self) -> &'static str {
        match self {
            Key::Id => "id",
            Key::Rowid => "rowid",
        }
    }
}

/// Where an output column's value comes from.
#[derive(Debug)]
pub(crate) enum Source {
    /// A legacy column copied as it is; files older than `since` do not have it and get `default_sql`
    /// (the default the legacy `ALTER TABLE ... ADD COLUMN` gave older rows).
    Copy {
        legacy: &'static str,
        since: u32,
        default_sql: &'static str,
    },
    /// A legacy time (text in one of three styles) converted to INTEGER epoch milliseconds UTC.
    Time { legacy: &'static str, since: u32 },
    /// A legacy duration in whole seconds, copied as it is when it is one a session can have (from 0 to
    /// [`MAX_SECONDS`]): a negative one would be taken off its project's running totals, and one near
    /// `i64::MAX` overflows them.
    Seconds { legacy: &'static str, since: u32 },
    /// `settings.secret`: whether the row's key looks like a credential.
    CredentialFlag,
}

/// One output column.
#[derive(Debug)]
pub(crate) struct Column {
    pub output: &'static str,
    pub source: Source,
}

impl Column {
    /// The legacy column this one reads, and the version that added it.
    pub fn legacy(&self) -> Option<(&'static str, u32)> {
        match self.source {
            Source::Copy { legacy, since, .. } | Source::Time { legacy, since } | Source::Seconds { legacy, since } => {
                Some((legacy, since))
            }
            Source::CredentialFlag => None,
        }
    }
}

/// A column that names a row of another table.
#[derive(Debug)]
pub(crate) struct Reference {
    pub column: &'static str,
    pub parent: &'static str,
    /// config.db enforces it (a foreign key with ON DELETE CASCADE): a row whose parent is not in the
    /// output cannot be kept, and goes to the rejects file as an orphan. Otherwise it is a plain column and
    /// a row naming no parent is kept and counted as dangling.
    pub enforced: bool,
    /// A NULL counts as dangling (an event with no session), not as "no reference" (a session with no
    /// project).
    pub null_is_dangling: bool,
}

/// One legacy table and its output.
#[derive(Debug)]
pub(crate) struct Table {
    /// Same name in the legacy file and in the output.
    pub name: &'static str,
    pub target: Target,
    /// The legacy version that created the table.
    pub since: u32,
    pub key: Key,
    /// Output columns after the key, in the output table's order.
    pub columns: &'static [Column],
    pub references: &'static [Reference],
    /// The columns of the output's UNIQUE constraint besides the key, if any (a legacy duplicate is
    /// rejected as "duplicate of id N").
    pub unique: &'static [&'static str],
    /// A column whose value never leaves the legacy file in a message or the rejects file, and how it is
    /// shown instead.
    pub redacted: Option<(&'static str, Redact)>,
}

/// How a secret column is shown in the rejects file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redact {
    /// Not at all: [`REDACTED`](crate::rejects::REDACTED) in its place (a settings value: a token, a password).
    Value,
    /// Scheme and host only (`https://calendar.example.com/<redacted>`): enough to tell which feed the row
    /// was, never its private path or token.
    UrlHost,
}

impl Table {
    /// The legacy columns this table has in a file of `version`, key first (the rowid is not a column).
    pub fn legacy_columns(&self, version: u32) -> Vec<&'static str> {
        let key = (self.key == Key::Id).then_some("id");
        key.into_iter()
            .chain(
                self.columns
                    .iter()
                    .filter_map(|c| c.legacy())
                    .filter(|(_, since)| *since <= version)
                    .map(|(name, _)| name),
            )
            .collect()
    }

    /// The version that added legacy column `name` to this table, if any version has it.
    pub fn column_since(&self, name: &str) -> Option<u32> {
        if self.key == Key::Id && name == "id" {
            return Some(self.since);
        }
        self.columns
            .iter()
            .filter_map(|c| c.legacy())
            .find(|(legacy, _)| *legacy == name)
            .map(|(_, since)| since)
    }
}

const fn copy(output: &'static str, since: u32) -> Column {
    Column {
        output,
        source: Source::Copy {
            legacy: output,
            since,
            default_sql: "NULL",
        },
    }
}

const fn time(output: &'static str, legacy: &'static str, since: u32) -> Column {
    Column {
        output,
        source: Source::Time { legacy, since },
    }
}

const fn reference(column: &'static str, parent: &'static str, enforced: bool, null_is_dangling: bool) -> Reference {
    Reference {
        column,
        parent,
        enforced,
        null_is_dangling,
    }
}

/// Every legacy table, in load order: parents before the tables that reference them (config.db enforces
/// its foreign keys while loading), config.db's tables before activity.db's (a session's project is looked
/// up in the loaded config.db).
pub(crate) static TABLES: &[Table] = &[
    Table {
        name: "projects",
        target: Target::Config,
        since: 1,
        key: Key::Id,
        columns: &[
            copy("name", 1),
            copy("color", 1),
            time("created_at_ms", "created_at", 1),
            Column {
                output: "archived",
                source: Source::Copy {
                    legacy: "archived",
                    since: 2,
                    default_sql: "0",
                },
            },
        ],
        references: &[],
        unique: &[],
        redacted: None,
    },
    Table {
        name: "calendar_subscriptions",
        target: Target::Config,
        since: 2,
        key: Key::Id,
        columns: &[
            copy("name", 2),
            copy("url", 2),
            copy("color", 2),
            time("last_synced_at_ms", "last_synced_at", 2),
            copy("enabled", 2),
        ],
        references: &[],
        unique: &[],
        redacted: Some(("url", Redact::UrlHost)),
    },
    Table {
        name: "project_domains",
        target: Target::Config,
        since: 1,
        key: Key::Id,
        columns: &[copy("project_id", 1), copy("domain", 1)],
        references: &[reference("project_id", "projects", true, false)],
        unique: &["project_id", "domain"],
        redacted: None,
    },
    Table {
        name: "project_calendar_keywords",
        target: Target::Config,
        since: 2,
        key: Key::Id,
        columns: &[copy("project_id", 2), copy("keyword", 2)],
        references: &[reference("project_id", "projects", true, false)],
        unique: &["project_id", "keyword"],
        redacted: None,
    },
    Table {
        name: "calendar_events",
        target: Target::Config,
        since: 2,
        key: Key::Id,
        columns: &[
            copy("subscription_id", 2),
            copy("uid", 2),
            copy("title", 2),
            time("start_time_ms", "start_time", 2),
            time("end_time_ms", "end_time", 2),
            copy("project_id", 2),
        ],
        references: &[
            reference("subscription_id", "calendar_subscriptions", true, false),
            reference("project_id", "projects", false, false),
        ],
        unique: &[],
        redacted: None,
    },
    Table {
        name: "settings",
        target: Target::Config,
        since: 1,
        key: Key::Rowid,
        columns: &[
            copy("key", 1),
            copy("value", 1),
            time("updated_at_ms", "updated_at", 3),
            Column {
                output: "secret",
                source: Source::CredentialFlag,
            },
        ],
        references: &[],
        unique: &[],
        redacted: Some(("value", Redact::Value)),
    },
    Table {
        name: "activity_sessions",
        target: Target::Activity,
        since: 1,
        key: Key::Id,
        columns: &[
            copy("app", 1),
            copy("title", 1),
            copy("url", 1),
            copy("domain", 1),
            copy("project_id", 1),
            time("start_time_ms", "start_time", 1),
            time("end_time_ms", "end_time", 1),
            Column {
                output: "duration_seconds",
                source: Source::Seconds {
                    legacy: "duration_seconds",
                    since: 1,
                },
            },
            Column {
                output: "is_idle",
                source: Source::Copy {
                    legacy: "is_idle",
                    since: 3,
                    default_sql: "0",
                },
            },
        ],
        references: &[reference("project_id", "projects", false, false)],
        unique: &[],
        redacted: None,
    },
    Table {
        name: "activity_events",
        target: Target::Activity,
        since: 1,
        key: Key::Id,
        columns: &[
            copy("session_id", 1),
            copy("event_type", 1),
            copy("app", 1),
            copy("title", 1),
            copy("url", 1),
            time("timestamp_ms", "timestamp", 1),
            copy("idle_seconds", 3),
        ],
        references: &[reference("session_id", "activity_sessions", false, true)],
        unique: &[],
        redacted: None,
    },
];

/// The table map entry for `name`.
pub(crate) fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// Name under which activity.db's connection attaches the loaded config.db, to count sessions whose
/// project is not there.
pub(crate) const CONFIG_ATTACHED: &str = "split_config";

/// `"name"` as an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The legacy file's tables (SQLite's own `sqlite_*` tables excluded).
pub(crate) const LEGACY_TABLES: &str =
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";

/// A legacy table's columns.
pub(crate) const LEGACY_COLUMNS: &str = "SELECT name FROM pragma_table_info(?1) ORDER BY cid";

/// Identity fields of the legacy header.
pub(crate) const LEGACY_HEADER: &str = "SELECT (SELECT user_version FROM pragma_user_version()),
        (SELECT application_id FROM pragma_application_id())";

/// Whether the legacy file has `sqlite_sequence` (it has, once an AUTOINCREMENT table was created).
pub(crate) const HAS_SEQUENCES: &str =
    "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_sequence')";

/// The legacy AUTOINCREMENT counters: the largest id each table ever handed out, deleted rows included.
pub(crate) const LEGACY_SEQUENCES: &str = "SELECT name, seq FROM sqlite_sequence";

/// Rows of a legacy table.
pub(crate) fn legacy_count(table: &Table) -> String {
    format!("SELECT count(*) FROM {}", ident(table.name))
}

/// Streams a legacy table in key order: the key, then one value per output column (a column the file's
/// version lacks reads as its default; the credential flag reads as NULL and is computed from the key).
pub(crate) fn legacy_select(table: &Table, version: u32) -> String {
    let mut cols = vec![table.key.sql().to_string()];
    for c in table.columns {
        cols.push(match c.source {
            Source::Copy {
                legacy,
                since,
                default_sql,
            } => {
                if since <= version {
                    ident(legacy)
                } else {
                    default_sql.to_string()
                }
            }
            Source::Time { legacy, since } | Source::Seconds { legacy, since } => {
                if since <= version {
                    ident(legacy)
                } else {
                    "NULL".to_string()
                }
            }
            Source::CredentialFlag => "NULL".to_string(),
        });
    }
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        cols.join(", "),
        ident(table.name),
        table.key.sql()
    )
}

/// Whether a parent row exists in the legacy file (to tell a deleted parent from a rejected one).
pub(crate) fn legacy_parent_exists(parent: &str) -> String {
    format!("SELECT EXISTS (SELECT 1 FROM {} WHERE id = ?1)", ident(parent))
}

fn output_columns(table: &Table) -> Vec<&'static str> {
    std::iter::once(table.key.sql())
        .chain(table.columns.iter().map(|c| c.output))
        .collect()
}

/// Inserts one converted row, key included.
pub(crate) fn output_insert(table: &Table) -> String {
    let cols = output_columns(table);
    let params: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({})",
        ident(table.name),
        cols.join(", "),
        params.join(", ")
    )
}

/// Inserts up to `rows` converted rows in one statement; a row whose key is NULL is skipped, so a last,
/// partial batch binds NULL to its unused rows (a key, `id INTEGER PRIMARY KEY`, is never NULL).
pub(crate) fn output_insert_batch(table: &Table, rows: usize) -> String {
    let cols = output_columns(table);
    let n = cols.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=n).map(|c| format!("?{}", r * n + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) SELECT * FROM (VALUES {}) WHERE column1 IS NOT NULL",
        ident(table.name),
        cols.join(", "),
        values.join(", ")
    )
}

/// The longest session a legacy duration may say (100 years, in seconds): longer is no session, and at most
/// this much per session, a project's running totals cannot overflow.
pub(crate) const MAX_SECONDS: i64 = 100 * 366 * 24 * 3600;

/// The output table's columns: name, whether NOT NULL, declared type (upper case).
pub(crate) const OUTPUT_COLUMNS: &str = "SELECT name, \"notnull\", upper(type) FROM pragma_table_info(?1)";

/// Reads an output table back in key order, in the same column order as [`output_insert`].
pub(crate) fn output_select(table: &Table) -> String {
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        output_columns(table).join(", "),
        ident(table.name),
        table.key.sql()
    )
}

/// Finds the row a legacy duplicate collides with under the output's UNIQUE constraint.
pub(crate) fn output_duplicate_of(table: &Table) -> Option<String> {
    if table.unique.is_empty() {
        return None;
    }
    let conds: Vec<String> = table
        .unique
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} IS ?{}", ident(c), i + 1))
        .collect();
    Some(format!(
        "SELECT id FROM {} WHERE {} ORDER BY id LIMIT 1",
        ident(table.name),
        conds.join(" AND ")
    ))
}

/// Kept rows of `table` whose `reference` names no row of the loaded output (`parent_schema` is `main`,
/// or [`CONFIG_ATTACHED`] for a session's project).
pub(crate) fn dangling_count(table: &Table, reference: &Reference, parent_schema: &str) -> String {
    let col = ident(reference.column);
    let null_clause = if reference.null_is_dangling {
        format!("t.{col} IS NULL OR ")
    } else {
        String::new()
    };
    format!(
        "SELECT count(*) FROM main.{} t WHERE {null_clause}(t.{col} IS NOT NULL AND NOT EXISTS \
         (SELECT 1 FROM {}.{} p WHERE p.id = t.{col}))",
        ident(table.name),
        ident(parent_schema),
        ident(reference.parent)
    )
}

pub(crate) const ATTACH_CONFIG: &str = "ATTACH DATABASE ?1 AS split_config";
pub(crate) const DETACH_CONFIG: &str = "DETACH DATABASE split_config";

/// The indexes and triggers a fresh output has, with their exact SQL (automatic indexes of UNIQUE
/// constraints have no SQL and stay: they catch legacy duplicates while loading). Both are set aside for
/// the load and put back after it: an index is built once instead of row by row, and activity.db's
/// triggers (which keep its running totals row by row) give way to one computation of the totals.
pub(crate) const OUTPUT_DERIVED: &str = "SELECT type, name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name";

/// Drops an index or a trigger (`kind` as `sqlite_schema.type` names it).
pub(crate) fn drop_derived(kind: &str, name: &str) -> String {
    let what = if kind == "trigger" { "TRIGGER" } else { "INDEX" };
    format!("DROP {what} {}", ident(name))
}

/// Raises an output's AUTOINCREMENT counter to at least `?2` (inserting with explicit ids already raised it
/// to the largest id copied).
pub(crate) const RAISE_SEQUENCE: &str = "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1";
/// Legacy sessions that have an end were ended by the legacy app: what activity.db's migration 3 records for
/// every ended session. Open ones stay open; the daemon's first open closes them (recovery).
pub(crate) const MARK_ENDED_SESSIONS: &str =
    "UPDATE activity_sessions SET end_reason = 'ended' WHERE end_time_ms IS NOT NULL AND end_reason IS NULL";

pub(crate) const INSERT_SEQUENCE: &str = "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2
     WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)";
