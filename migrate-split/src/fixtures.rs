//! Realistic legacy files for tests, benches and `splitstore demo`, built from the real legacy schema
//! (`legacy/v1.sql`..`v3.sql`, embedded) with the quirks `legacy/README.md` lists, deterministically from
//! a seed:
//! - rollback-journal mode, page size 4096, foreign keys off (so dangling references can exist);
//! - history: rows are written in "eras", each era under the schema of its version, so rows written before
//!   a version really lack that version's columns (SQLite reads its `ALTER TABLE ... ADD COLUMN` default);
//! - dangling references of every kind: sessions and calendar events of deleted (or never existing)
//!   projects, events with a NULL or deleted session, domains and keywords of deleted projects, calendar
//!   events of deleted subscriptions;
//! - the three time styles (plus RFC 3339 offsets and fractions) mixed within each table, and, as an
//!   option, values that are not times at all;
//! - text of every kind (empty, newlines, quotes, SQL, emoji, CJK, several KB), duplicate domains and
//!   keywords, JSON settings and credential settings, and optionally an add-on's unknown table.
//!
//! [`build`] returns the counts a correct split must report ([`FixtureSummary`]), computed while writing.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params};

use crate::report::TableCounts;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacySpec {
    /// Legacy schema version, 1..=3.
    pub version: u32,
    /// Projects ever created (some are deleted afterwards, the last one always).
    pub projects: u32,
    /// Activity sessions ever created (some are deleted afterwards).
    pub sessions: u32,
    pub events_per_session: u32,
    /// Write some values that are not times (the split rejects those rows).
    pub unparseable_times: bool,
    /// Add an add-on's table no legacy version has.
    pub unknown_table: bool,
    pub seed: u64,
}

impl LegacySpec {
    /// A file of a few hundred rows: every quirk, built in milliseconds (tests).
    pub fn small(version: u32) -> LegacySpec {
        LegacySpec {
            version,
            projects: 24,
            sessions: 300,
            events_per_session: 4,
            unparseable_times: false,
            unknown_table: false,
            seed: 7,
        }
    }

    /// About 200,000 events, ~40 MB (benches).
    pub fn medium(version: u32) -> LegacySpec {
        LegacySpec {
            projects: 200,
            sessions: 20_000,
            events_per_session: 10,
            ..LegacySpec::small(version)
        }
    }

    /// About 1 GB, 6.6 million rows (manual measurements: `examples/build_fixture.rs`, then the `split`
    /// bench with `SPLIT_BENCH_LEGACY`).
    pub fn large(version: u32) -> LegacySpec {
        LegacySpec {
            projects: 2_000,
            sessions: 600_000,
            events_per_session: 10,
            ..LegacySpec::small(version)
        }
    }
}

impl Default for LegacySpec {
    fn default() -> Self {
        LegacySpec::small(3)
    }
}

/// What a correct split of the built file reports.
#[derive(Clone)]
pub struct FixtureSummary {
    pub version: u32,
    /// Per table the version has: the counts the split must report, plus how many rows were rejected
    /// for an unparseable time and how many as orphans.
    pub tables: BTreeMap<String, ExpectedCounts>,
    pub unknown_tables: Vec<String>,
    /// Keys of the settings that must come out with `secret = 1`.
    pub secret_keys: Vec<String>,
    /// Settings values that must never appear in a report, a message or the rejects file: every credential
    /// value, and every value of a settings row the split rejects.
    pub secret_values: Vec<String>,
    /// Every calendar feed URL (each with a private token in its path), which must never appear in a report,
    /// a message or the rejects file either (only its scheme and host may).
    pub secret_urls: Vec<String>,
    /// Size of the file written.
    pub bytes: u64,
}

impl std::fmt::Debug for FixtureSummary {
    // By hand: the secret values are never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixtureSummary")
            .field("version", &self.version)
            .field("tables", &self.tables)
            .field("unknown_tables", &self.unknown_tables)
            .field("secret_keys", &self.secret_keys)
            .field(
                "secret_values",
                &format_args!("<{} redacted>", self.secret_values.len()),
            )
            .field("secret_urls", &format_args!("<{} redacted>", self.secret_urls.len()))
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl FixtureSummary {
    /// The counts a split must report, per table.
    pub fn counts(&self) -> BTreeMap<String, TableCounts> {
        self.tables.iter().map(|(k, v)| (k.clone(), v.counts)).collect()
    }

    /// Rows of all tables.
    pub fn rows(&self) -> u64 {
        self.tables.values().map(|t| t.counts.legacy).sum()
    }

    /// Rejected rows of all tables.
    pub fn rejected(&self) -> u64 {
        self.tables.values().map(|t| t.counts.rejected).sum()
    }
}

/// Expected counts of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpectedCounts {
    pub counts: TableCounts,
    pub unparseable: u64,
    pub orphans: u64,
}

impl ExpectedCounts {
    fn copied(&mut self) {
        self.counts.legacy += 1;
        self.counts.copied += 1;
    }
    fn copied_dangling(&mut self, dangling: bool) {
        self.copied();
        self.counts.dangling += u64::from(dangling);
    }
    fn rejected_time(&mut self) {
        self.counts.legacy += 1;
        self.counts.rejected += 1;
        self.unparseable += 1;
    }
    fn rejected_orphan(&mut self) {
        self.counts.legacy += 1;
        self.counts.rejected += 1;
        self.counts.dangling += 1;
        self.orphans += 1;
    }
    fn rejected_duplicate(&mut self) {
        self.counts.legacy += 1;
        self.counts.rejected += 1;
        self.counts.duplicates += 1;
    }
    fn rejected_other(&mut self) {
        self.counts.legacy += 1;
        self.counts.rejected += 1;
    }
}

/// Why a fixture could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    #[error("invalid fixture spec: {0}")]
    Spec(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("building the fixture: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The legacy schema, one script per version, each applied on top of the previous one.
pub const LEGACY_SQL: [&str; 3] = [
    include_str!("../legacy/v1.sql"),
    include_str!("../legacy/v2.sql"),
    include_str!("../legacy/v3.sql"),
];

/// The add-on table [`LegacySpec::unknown_table`] adds.
pub const UNKNOWN_TABLE: &str = "addon_focus_stats";

/// 2023-06-01T00:00:00Z: the first session starts here.
const BASE_MS: i64 = 1_685_577_600_000;

/// Writes the legacy file `path` (which must not exist) as `spec` says.
pub fn build(spec: &LegacySpec, path: &Path) -> Result<FixtureSummary, FixtureError> {
    if !(1..=3).contains(&spec.version) {
        return Err(FixtureError::Spec(format!("version {} is not 1, 2 or 3", spec.version)));
    }
    if spec.projects < 4 || spec.sessions < 4 {
        return Err(FixtureError::Spec("at least 4 projects and 4 sessions".into()));
    }
    if path.exists() {
        return Err(FixtureError::Spec(format!("{} exists", path.display())));
    }
    let conn = Connection::open(path)?;
    // What sql.js left: rollback journal, 4 KiB pages, foreign keys never enforced.
    conn.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE; PRAGMA foreign_keys = OFF;")?;
    let mut b = Builder::new(spec, conn);
    for era in 1..=spec.version {
        b.conn.execute_batch(LEGACY_SQL[era as usize - 1])?;
        b.conn.execute_batch("BEGIN")?;
        b.era(era)?;
        b.conn.execute_batch("COMMIT")?;
    }
    b.conn.execute_batch("BEGIN")?;
    b.delete_rows()?;
    if spec.unknown_table {
        b.unknown_table()?;
    }
    b.conn.execute_batch("COMMIT")?;
    let summary = b.finish()?;
    let bytes = std::fs::metadata(path)
        .map_err(|e| FixtureError::Io {
            path: path.to_path_buf(),
            source: e,
        })?
        .len();
    Ok(FixtureSummary { bytes, ..summary })
}

/// splitmix64: small, fast, and the same sequence everywhere.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Text the old code stored, of every kind.
const ODD_TEXT: &[&str] = &[
    "",
    "line one\nline two\r\nline three",
    "it's a \"quoted\" title",
    "'; DROP TABLE projects; --",
    "Robert'); DELETE FROM settings WHERE ('1'='1",
    "🎉 launch day 🚀",
    "会議の準備 — 项目计划",
    "tab\tseparated\tvalues",
    "NULL",
    "  leading and trailing spaces  ",
    "back\\slash and 100% literal_%",
];

const NOT_TIMES: &[&str] = &[
    "yesterday",
    "",
    "2024-13-45 25:61:00",
    "not a time",
    "2024-02-30T10:00:00Z",
    "1704103200000ms",
    "12/31/2023 10:00",
];

struct Builder<'a> {
    spec: &'a LegacySpec,
    conn: Connection,
    rng: Rng,
    expected: BTreeMap<&'static str, ExpectedCounts>,
    secret_keys: Vec<String>,
    secret_values: Vec<String>,
    secret_urls: Vec<String>,
    /// Next row index per table (rows are numbered across eras).
    next: BTreeMap<&'static str, u64>,
    /// (project, domain) / (project, keyword) pairs kept so far, to predict duplicates.
    seen_pairs: std::collections::HashSet<(&'static str, u64, String)>,
}

impl<'a> Builder<'a> {
    fn new(spec: &'a LegacySpec, conn: Connection) -> Builder<'a> {
        let expected = crate::queries::TABLES
            .iter()
            .filter(|t| t.since <= spec.version)
            .map(|t| (t.name, ExpectedCounts::default()))
            .collect();
        Builder {
            spec,
            conn,
            rng: Rng::new(spec.seed, 1),
            expected,
            secret_keys: Vec::new(),
            secret_values: Vec::new(),
            secret_urls: Vec::new(),
            next: BTreeMap::new(),
            seen_pairs: Default::default(),
        }
    }

    fn subscriptions(&self) -> u64 {
        u64::from(self.spec.projects / 4).max(2)
    }

    /// Rows of a table created in version `since` that belong to `era`: a table's rows are spread evenly
    /// over the eras from its version to the file's.
    fn era_range(&self, since: u32, era: u32, total: u64) -> std::ops::Range<u64> {
        if era < since {
            return 0..0;
        }
        let eras = u64::from(self.spec.version - since + 1);
        let k = u64::from(era - since);
        (total * k / eras)..(total * (k + 1) / eras)
    }

    fn project_deleted(&self, id: u64) -> bool {
        id % 7 == 3 || id == u64::from(self.spec.projects)
    }
    fn project_bad_time(&self, id: u64) -> bool {
        self.spec.unparseable_times && !self.project_deleted(id) && id % 11 == 5
    }
    fn project_kept(&self, id: u64) -> bool {
        (1..=u64::from(self.spec.projects)).contains(&id) && !self.project_deleted(id) && !self.project_bad_time(id)
    }
    fn subscription_deleted(&self, id: u64) -> bool {
        id % 5 == 2
    }
    fn subscription_bad_time(&self, id: u64) -> bool {
        self.spec.unparseable_times && !self.subscription_deleted(id) && id % 6 == 4
    }
    fn subscription_kept(&self, id: u64) -> bool {
        !self.subscription_deleted(id) && !self.subscription_bad_time(id)
    }
    fn session_deleted(&self, id: u64) -> bool {
        id % 17 == 9
    }
    fn session_bad_time(&self, id: u64) -> bool {
        self.spec.unparseable_times && !self.session_deleted(id) && id % 23 == 7
    }
    fn session_kept(&self, id: u64) -> bool {
        (1..=u64::from(self.spec.sessions)).contains(&id) && !self.session_deleted(id) && !self.session_bad_time(id)
    }

    fn expect(&mut self, table: &'static str) -> &mut ExpectedCounts {
        self.expected.entry(table).or_default()
    }

    fn text(&mut self, normal: String) -> String {
        if self.rng.one_in(40) {
            ODD_TEXT[self.rng.below(ODD_TEXT.len() as u64) as usize].to_string()
        } else if self.rng.one_in(700) {
            // Several KB, as a pasted document title or a long URL would be.
            format!("{normal} {}", "lorem ipsum dolor sit amet, ".repeat(120))
        } else {
            normal
        }
    }

    /// A time in one of the legacy styles.
    fn time(&mut self, ms: i64) -> String {
        let t = chrono::DateTime::from_timestamp_millis(ms).expect("fixture times are in range");
        match self.rng.below(8) {
            0..=2 => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            3 | 4 => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            5 => ms.to_string(),
            6 => t
                .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).expect("valid offset"))
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            _ => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        }
    }

    fn bad_time(&mut self) -> String {
        NOT_TIMES[self.rng.below(NOT_TIMES.len() as u64) as usize].to_string()
    }

    fn take(&mut self, table: &'static str, range: std::ops::Range<u64>) -> std::ops::Range<u64> {
        let start = *self.next.entry(table).or_insert(0);
        debug_assert_eq!(start, range.start);
        self.next.insert(table, range.end);
        range
    }

    fn era(&mut self, era: u32) -> rusqlite::Result<()> {
        let p = self.era_range(1, era, u64::from(self.spec.projects));
        let p = self.take("projects", p);
        self.projects(era, p)?;
        if era >= 2 {
            let s = self.era_range(2, era, self.subscriptions());
            let s = self.take("calendar_subscriptions", s);
            self.subscriptions_rows(s)?;
        }
        let p = self.era_range(1, era, u64::from(self.spec.projects));
        self.domains(p.clone())?;
        if era >= 2 {
            let p = self.era_range(2, era, u64::from(self.spec.projects));
            self.keywords(p)?;
            let s = self.era_range(2, era, self.subscriptions());
            self.calendar_events(s)?;
        }
        self.settings(era)?;
        let s = self.era_range(1, era, u64::from(self.spec.sessions));
        let s = self.take("activity_sessions", s);
        self.sessions_and_events(era, s)
    }

    fn projects(&mut self, era: u32, rows: std::ops::Range<u64>) -> rusqlite::Result<()> {
        for i in rows {
            let id = i + 1;
            let name = self.text(format!("Project {id}"));
            let color = (!self.rng.one_in(5)).then(|| format!("#{:06x}", self.rng.below(0x100_0000)));
            let created = if self.project_bad_time(id) {
                Some(self.bad_time())
            } else if self.rng.one_in(9) {
                None
            } else {
                Some(self.time(BASE_MS - 86_400_000 * 30 + id as i64 * 3_600_000))
            };
            if era >= 2 {
                let archived = i64::from(self.rng.one_in(6));
                self.conn
                    .prepare_cached(
                        "INSERT INTO projects (id, name, color, created_at, archived) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![id as i64, name, color, created, archived])?;
            } else {
                self.conn
                    .prepare_cached("INSERT INTO projects (id, name, color, created_at) VALUES (?1, ?2, ?3, ?4)")?
                    .execute(params![id as i64, name, color, created])?;
            }
            if self.project_deleted(id) {
                continue;
            }
            if self.project_bad_time(id) {
                self.expect("projects").rejected_time();
            } else {
                self.expect("projects").copied();
            }
        }
        Ok(())
    }

    fn subscriptions_rows(&mut self, rows: std::ops::Range<u64>) -> rusqlite::Result<()> {
        for i in rows {
            let id = i + 1;
            let synced = if self.subscription_bad_time(id) {
                Some(self.bad_time())
            } else if self.rng.one_in(4) {
                None
            } else {
                Some(self.time(BASE_MS + id as i64 * 7_200_000))
            };
            let name = self.text(format!("Calendar {id}"));
            let color = (!self.rng.one_in(3)).then(|| format!("#{:06x}", self.rng.below(0x100_0000)));
            // Feed URLs carry a private token, as real ones do (`.../private-<token>/basic.ics`).
            let url = format!(
                "https://calendar.example.com/ical/user{id}/private-{:016x}/basic.ics",
                self.rng.below(u64::MAX)
            );
            self.secret_urls.push(url.clone());
            self.conn
                .prepare_cached(
                    "INSERT INTO calendar_subscriptions (id, name, url, color, last_synced_at, enabled)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    id as i64,
                    name,
                    url,
                    color,
                    synced,
                    i64::from(!self.rng.one_in(4))
                ])?;
            if self.subscription_deleted(id) {
                continue;
            }
            if self.subscription_bad_time(id) {
                self.expect("calendar_subscriptions").rejected_time();
            } else {
                self.expect("calendar_subscriptions").copied();
            }
        }
        Ok(())
    }

    /// Child rows of projects under an enforced foreign key and a UNIQUE pair: orphans of deleted or
    /// rejected projects, and duplicates of a kept pair.
    fn project_child(&mut self, table: &'static str, project: u64, text: String) {
        if self.project_deleted(project) || !self.project_kept(project) {
            self.expect(table).rejected_orphan();
        } else if !self.seen_pairs.insert((table, project, text)) {
            self.expect(table).rejected_duplicate();
        } else {
            self.expect(table).copied();
        }
    }

    fn domains(&mut self, projects: std::ops::Range<u64>) -> rusqlite::Result<()> {
        for i in projects {
            let project = i + 1;
            let mut domains: Vec<String> = (0..project % 4)
                .map(|k| match (project + k) % 9 {
                    0 => "例え.jp".to_string(),
                    _ => format!("{}p{project}.example.com", ["", "docs.", "api."][k as usize % 3]),
                })
                .collect();
            if project % 3 == 0 && !domains.is_empty() {
                domains.push(domains[0].clone());
            }
            for domain in domains {
                self.conn
                    .prepare_cached("INSERT INTO project_domains (project_id, domain) VALUES (?1, ?2)")?
                    .execute(params![project as i64, domain])?;
                self.project_child("project_domains", project, domain);
            }
        }
        Ok(())
    }

    fn keywords(&mut self, projects: std::ops::Range<u64>) -> rusqlite::Result<()> {
        for i in projects {
            let project = i + 1;
            let mut keywords: Vec<String> = (0..project % 3)
                .map(|k| {
                    ["standup", "Sprint review", "1:1 \"sync\"", "デザイン"][((project + k) % 4) as usize].to_string()
                })
                .collect();
            if project % 4 == 1 && !keywords.is_empty() {
                keywords.push(keywords[0].clone());
            }
            for keyword in keywords {
                self.conn
                    .prepare_cached("INSERT INTO project_calendar_keywords (project_id, keyword) VALUES (?1, ?2)")?
                    .execute(params![project as i64, keyword])?;
                self.project_child("project_calendar_keywords", project, keyword);
            }
        }
        Ok(())
    }

    fn calendar_events(&mut self, subscriptions: std::ops::Range<u64>) -> rusqlite::Result<()> {
        let projects = u64::from(self.spec.projects);
        for j in subscriptions {
            let subscription = j + 1;
            for k in 0..8u64 {
                let idx = (subscription - 1) * 8 + k;
                let start_ms = BASE_MS + idx as i64 * 1_800_000;
                let bad = self.spec.unparseable_times && idx % 9 == 4;
                let start = if bad && k % 2 == 0 {
                    self.bad_time()
                } else {
                    self.time(start_ms)
                };
                let end = if bad && k % 2 == 1 {
                    Some(self.bad_time())
                } else if idx % 5 == 0 {
                    None
                } else {
                    Some(self.time(start_ms + 3_600_000))
                };
                let project = match idx % 7 {
                    0 => None,
                    1 => Some(projects + 2),
                    _ => Some(1 + self.rng.below(projects)),
                };
                let title = self.text(format!("Meeting {idx}"));
                self.conn
                    .prepare_cached(
                        "INSERT INTO calendar_events (subscription_id, uid, title, start_time, end_time, project_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        subscription as i64,
                        format!("uid-{idx}@calendar.example.com"),
                        title,
                        start,
                        end,
                        project.map(|p| p as i64)
                    ])?;
                if bad {
                    self.expect("calendar_events").rejected_time();
                } else if !self.subscription_kept(subscription) {
                    self.expect("calendar_events").rejected_orphan();
                } else {
                    let dangling = project.is_some_and(|p| !self.project_kept(p));
                    self.expect("calendar_events").copied_dangling(dangling);
                }
            }
        }
        Ok(())
    }

    fn settings(&mut self, era: u32) -> rusqlite::Result<()> {
        let seed = self.spec.seed;
        let layout = format!(
            "{{\"panels\": [{}], \"note\": \"line\\nbreak\"}}",
            (0..150)
                .map(|i| format!("{{\"id\": {i}, \"w\": {}}}", 100 + i))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // The era a setting is written in is its index modulo the file's version; the token whose time is
        // unparseable is written last, under version 3, which added `updated_at`.
        let all: Vec<(Option<String>, Option<String>)> = vec![
            (
                Some("theme".into()),
                Some("{\"mode\": \"dark\", \"accent\": \"#3366ff\"}".into()),
            ),
            (
                Some("api_token".into()),
                Some(format!("sk-live-{seed:016x}-DO-NOT-LEAK")),
            ),
            (Some("CalendarPassword".into()), Some(format!("hunter2-{seed}-pw"))),
            (
                Some("sync.client_secret".into()),
                Some(format!("cs-{seed:x}-secret-value")),
            ),
            (Some("github_apikey".into()), Some(format!("ghk-{seed:x}-apikey-value"))),
            (Some("hotkey".into()), Some("ctrl+shift+k".into())),
            (Some("ui.layout".into()), Some(layout)),
            (Some("empty".into()), Some(String::new())),
            (Some("nothing".into()), None),
            (Some("sql".into()), Some("'; DROP TABLE settings; --".into())),
            (Some("multiline".into()), Some("a\nb\r\nc".into())),
            (Some("emoji".into()), Some("🎉 中文 ✓".into())),
            (None, Some(format!("value-of-a-null-key-{seed}"))),
            (
                Some("old_session_token".into()),
                Some(format!("old-tok-{seed:x}-value")),
            ),
        ];
        let version = self.spec.version;
        for (i, (key, value)) in all.into_iter().enumerate() {
            let written_in = if key.as_deref() == Some("old_session_token") {
                version
            } else {
                i as u32 % version + 1
            };
            if written_in != era {
                continue;
            }
            let secret = key.as_deref().is_some_and(crate::is_credential_key);
            let bad = era >= 3 && self.spec.unparseable_times && key.as_deref() == Some("old_session_token");
            if era >= 3 {
                let updated = if bad {
                    Some(self.bad_time())
                } else if i % 4 == 0 {
                    None
                } else {
                    Some(self.time(BASE_MS + i as i64 * 60_000))
                };
                self.conn
                    .prepare_cached("INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)")?
                    .execute(params![key, value, updated])?;
            } else {
                self.conn
                    .prepare_cached("INSERT INTO settings (key, value) VALUES (?1, ?2)")?
                    .execute(params![key, value])?;
            }
            let rejected = key.is_none() || bad;
            if secret && !rejected {
                self.secret_keys.push(key.clone().expect("secret keys are keys"));
            }
            if secret || rejected {
                self.secret_values.extend(value.clone());
            }
            if bad {
                self.expect("settings").rejected_time();
            } else if key.is_none() {
                self.expect("settings").rejected_other();
            } else {
                self.expect("settings").copied();
            }
        }
        Ok(())
    }

    fn sessions_and_events(&mut self, era: u32, sessions: std::ops::Range<u64>) -> rusqlite::Result<()> {
        const APPS: &[&str] = &["Code", "Firefox", "Terminal", "Slack", "微信", "Figma"];
        const EVENTS: &[&str] = &["focus", "blur", "title_change", "url_change", "idle", "active"];
        let projects = u64::from(self.spec.projects);
        let per = u64::from(self.spec.events_per_session);
        for i in sessions {
            let id = i + 1;
            let start_ms = BASE_MS + id as i64 * 60_000;
            let bad = self.session_bad_time(id);
            let start = if bad { self.bad_time() } else { self.time(start_ms) };
            let (end, duration) = if id % 10 == 0 {
                (None, None)
            } else {
                let d = 5 + self.rng.below(3_600) as i64;
                (Some(self.time(start_ms + d * 1000)), Some(d))
            };
            let project = match id % 13 {
                0 | 5 => None,
                6 => Some(projects + 3),
                _ => Some(1 + self.rng.below(projects)),
            };
            let app = APPS[self.rng.below(APPS.len() as u64) as usize];
            let title = self.text(format!("main.rs — splitstore — session {id}"));
            let url = (id % 3 != 0).then(|| format!("https://example.com/work/{id}?tab={}", id % 7));
            let domain = url.as_ref().map(|_| "example.com");
            let mut stmt = if era >= 3 {
                self.conn.prepare_cached(
                    "INSERT INTO activity_sessions (id, app, title, url, domain, project_id, start_time, end_time,
                     duration_seconds, is_idle) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
            } else {
                self.conn.prepare_cached(
                    "INSERT INTO activity_sessions (id, app, title, url, domain, project_id, start_time, end_time,
                     duration_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
            };
            let base = params![
                id as i64,
                app,
                title,
                url,
                domain,
                project.map(|p| p as i64),
                start,
                end,
                duration
            ];
            if era >= 3 {
                let mut all = base.to_vec();
                let idle = i64::from(id % 8 == 0);
                all.push(&idle);
                stmt.execute(all.as_slice())?;
            } else {
                stmt.execute(base)?;
            }
            drop(stmt);
            if !self.session_deleted(id) {
                if bad {
                    self.expect("activity_sessions").rejected_time();
                } else {
                    let dangling = project.is_some_and(|p| !self.project_kept(p));
                    self.expect("activity_sessions").copied_dangling(dangling);
                }
            }
            for k in 0..per {
                let idx = (id - 1) * per + k;
                let session = (idx % 29 != 0).then_some(id);
                let bad = self.spec.unparseable_times && idx % 31 == 13;
                let ts = if bad {
                    self.bad_time()
                } else {
                    self.time(start_ms + k as i64 * 5_000)
                };
                let kind = EVENTS[(idx % EVENTS.len() as u64) as usize];
                let title = self.text(format!("event {idx} of session {id}"));
                let url = (idx % 4 != 0).then(|| format!("https://example.com/work/{id}/{k}"));
                if era >= 3 {
                    let idle = (k % 5 == 4).then_some(30 + (idx % 90) as i64);
                    self.conn
                        .prepare_cached(
                            "INSERT INTO activity_events (session_id, event_type, app, title, url, timestamp,
                             idle_seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )?
                        .execute(params![session.map(|s| s as i64), kind, app, title, url, ts, idle])?;
                } else {
                    self.conn
                        .prepare_cached(
                            "INSERT INTO activity_events (session_id, event_type, app, title, url, timestamp)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )?
                        .execute(params![session.map(|s| s as i64), kind, app, title, url, ts])?;
                }
                if bad {
                    self.expect("activity_events").rejected_time();
                } else {
                    let dangling = session.is_none_or(|s| !self.session_kept(s));
                    self.expect("activity_events").copied_dangling(dangling);
                }
            }
        }
        Ok(())
    }

    /// Deletions, as users made them over the years; foreign keys were off, so nothing cascaded.
    fn delete_rows(&mut self) -> rusqlite::Result<()> {
        for id in (1..=u64::from(self.spec.projects)).filter(|id| self.project_deleted(*id)) {
            self.conn.execute("DELETE FROM projects WHERE id = ?1", [id as i64])?;
        }
        if self.spec.version >= 2 {
            for id in (1..=self.subscriptions()).filter(|id| self.subscription_deleted(*id)) {
                self.conn
                    .execute("DELETE FROM calendar_subscriptions WHERE id = ?1", [id as i64])?;
            }
        }
        for id in (1..=u64::from(self.spec.sessions)).filter(|id| self.session_deleted(*id)) {
            self.conn
                .execute("DELETE FROM activity_sessions WHERE id = ?1", [id as i64])?;
        }
        Ok(())
    }

    fn unknown_table(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch(&format!(
            "CREATE TABLE {UNKNOWN_TABLE} (id INTEGER PRIMARY KEY, day TEXT NOT NULL, focus_minutes INTEGER);"
        ))?;
        for day in 1..=5 {
            self.conn.execute(
                &format!("INSERT INTO {UNKNOWN_TABLE} (day, focus_minutes) VALUES (?1, ?2)"),
                params![format!("2024-01-0{day}"), day * 37],
            )?;
        }
        Ok(())
    }

    fn finish(self) -> Result<FixtureSummary, FixtureError> {
        self.conn.close().map_err(|(_, e)| e)?;
        let version = self.spec.version;
        let tables = self.expected.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Ok(FixtureSummary {
            version,
            tables,
            unknown_tables: if self.spec.unknown_table {
                vec![UNKNOWN_TABLE.to_string()]
            } else {
                Vec::new()
            },
            secret_keys: self.secret_keys,
            secret_values: self.secret_values,
            secret_urls: self.secret_urls,
            bytes: 0,
        })
    }
}

/// A point of a split where a test stops it ([`stop_at`]) to `kill -9` it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPoint {
    /// The outputs are converted and verified, the split is recorded as placing them; nothing is in place.
    BeforePlacing,
    /// activity.db (and the rejects file) is in place, config.db is not yet.
    BetweenPlacements,
}

impl StopPoint {
    /// Its name: the role of a child process that stops there ([`StopPoint::named`]).
    pub fn name(self) -> &'static str {
        match self {
            StopPoint::BeforePlacing => "before-placing",
            StopPoint::BetweenPlacements => "between-placements",
        }
    }

    /// The point of that [`name`](StopPoint::name).
    pub fn named(name: &str) -> Option<StopPoint> {
        [StopPoint::BeforePlacing, StopPoint::BetweenPlacements]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// The child process of a test that kills a split at `point`: splits `<dir>/legacy.db` into `<dir>/data`
/// (as `migrate-split --legacy <dir>/legacy.db --data-dir <dir>/data` does) and stops there for good, once
/// it has created `<dir>/stopped`.
pub fn split_stopping_at(point: StopPoint, dir: &Path) -> ! {
    stop_at(point, &dir.join("stopped"));
    crate::split(&dir.join("legacy.db"), &dir.join("data"), &Default::default()).unwrap();
    panic!("the split did not stop at {}", point.name());
}

static STOP_AT: std::sync::OnceLock<(StopPoint, std::path::PathBuf)> = std::sync::OnceLock::new();

/// Makes every later split of this process stop for good at `point`, once it has created the file `marker`
/// (a test waits for it, then kills the process). For a child process of a test; never set otherwise.
pub fn stop_at(point: StopPoint, marker: &Path) {
    let _ = STOP_AT.set((point, marker.to_path_buf()));
}

/// Called by the split at `point`: stops there if [`stop_at`] asked for it.
pub(crate) fn reached(point: StopPoint) {
    if let Some((at, marker)) = STOP_AT.get()
        && *at == point
    {
        std::fs::write(marker, b"").expect("create the stop marker");
        loop {
            std::thread::park();
        }
    }
}
