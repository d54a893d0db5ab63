-- sqlite3 doing the work a split does, in SQL alone, for `benches/split-vs-sqlite3.sh` to time against
-- migrate-split on the same legacy file. Run in a directory holding legacy.db (or a link to it):
--   sqlite3 activity.db < benches/split-equal-work.sql
-- The same work: the legacy file checked (quick_check); both outputs with their real schema (every
-- migration's tables and indexes, the bookkeeping tables, application_id and user_version); every row
-- copied with its times converted to epoch milliseconds in SQL (the three legacy styles: epoch text,
-- ISO-8601 with or without an offset, CURRENT_TIMESTAMP style); rows that cannot be kept left out
-- (unparseable times, orphans, duplicates); sessions' end_reason; AUTOINCREMENT counters carried over;
-- the indexes built after the load; activity.db's running totals computed; every row read back; both
-- outputs checked (quick_check, foreign_key_check) and switched to WAL. The same posture as the split's
-- temporary outputs: no journal and no fsync while loading (journal_mode=OFF, synchronous=OFF), a sync at
-- the end (synchronous=NORMAL for the switch to WAL), the same page cache. One sorter helper thread
-- (sqlite3's way to use the second core; migrate-split builds indexes on one and runs the legacy file's
-- checks on the other).
-- Not done here, and done by migrate-split on top: the sha256 of the legacy file, a rejects file naming
-- every row left out and why, a digest of every value compared with the rows read back, provenance
-- records, the owner locks and the crash-safe placing of the outputs.
.bail on
.output /dev/null
PRAGMA main.journal_mode = OFF;
PRAGMA main.synchronous = OFF;
PRAGMA main.cache_size = -16384;
PRAGMA threads = 1;
ATTACH 'file:legacy.db?mode=ro' AS l;
ATTACH 'config.db' AS c;
PRAGMA c.journal_mode = OFF;
PRAGMA c.synchronous = OFF;
PRAGMA c.cache_size = -4096;
PRAGMA l.quick_check;

BEGIN;
CREATE TABLE main.schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE main.reader_compatibility (id INTEGER PRIMARY KEY CHECK (id = 1), min_reader_version INTEGER NOT NULL);
CREATE TABLE main.provenance (id INTEGER PRIMARY KEY, event TEXT NOT NULL, at_ms INTEGER NOT NULL, source_path TEXT, source_sha256 TEXT, source_version INTEGER, detail TEXT);
CREATE TABLE main.activity_sessions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    app              TEXT NOT NULL,
    title            TEXT,
    url              TEXT,
    domain           TEXT,
    project_id       INTEGER,
    start_time_ms    INTEGER NOT NULL,
    end_time_ms      INTEGER,
    duration_seconds INTEGER,
    is_idle          INTEGER NOT NULL DEFAULT 0,
    end_reason       TEXT
);
CREATE TABLE main.activity_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id   INTEGER,
    event_type   TEXT NOT NULL,
    app          TEXT,
    title        TEXT,
    url          TEXT,
    timestamp_ms INTEGER NOT NULL,
    idle_seconds INTEGER
);
CREATE TABLE main.activity_totals (
    has_project INTEGER NOT NULL,
    project_id  INTEGER NOT NULL,
    bucket_ms   INTEGER NOT NULL,
    sessions    INTEGER NOT NULL,
    seconds     INTEGER NOT NULL,
    PRIMARY KEY (has_project, project_id, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE c.schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE c.reader_compatibility (id INTEGER PRIMARY KEY CHECK (id = 1), min_reader_version INTEGER NOT NULL);
CREATE TABLE c.provenance (id INTEGER PRIMARY KEY, event TEXT NOT NULL, at_ms INTEGER NOT NULL, source_path TEXT, source_sha256 TEXT, source_version INTEGER, detail TEXT);
CREATE TABLE c.projects (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    color         TEXT,
    created_at_ms INTEGER,
    archived      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE c.project_domains (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    domain     TEXT NOT NULL,
    UNIQUE (project_id, domain)
);
CREATE TABLE c.project_calendar_keywords (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    keyword    TEXT NOT NULL,
    UNIQUE (project_id, keyword)
);
CREATE TABLE c.calendar_subscriptions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              TEXT NOT NULL,
    url               TEXT NOT NULL,
    color             TEXT,
    last_synced_at_ms INTEGER,
    enabled           INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE c.calendar_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id INTEGER NOT NULL REFERENCES calendar_subscriptions(id) ON DELETE CASCADE,
    uid             TEXT NOT NULL,
    title           TEXT,
    start_time_ms   INTEGER NOT NULL,
    end_time_ms     INTEGER,
    project_id      INTEGER
);
CREATE TABLE c.settings (
    key           TEXT PRIMARY KEY NOT NULL,
    value         TEXT,
    updated_at_ms INTEGER,
    secret        INTEGER NOT NULL DEFAULT 0
);
COMMIT;

BEGIN;
INSERT INTO c.projects (id, name, color, created_at_ms, archived)
SELECT id, name, color, CASE WHEN created_at IS NULL THEN NULL WHEN typeof(created_at) = 'integer' THEN created_at WHEN created_at <> '' AND created_at NOT GLOB '*[^0-9]*' THEN CAST(created_at AS INTEGER) ELSE CAST(round((julianday(created_at) - 2440587.5) * 86400000.0) AS INTEGER) END, archived FROM l.projects WHERE name IS NOT NULL ORDER BY id;
INSERT INTO c.calendar_subscriptions (id, name, url, color, last_synced_at_ms, enabled)
SELECT id, name, url, color, CASE WHEN last_synced_at IS NULL THEN NULL WHEN typeof(last_synced_at) = 'integer' THEN last_synced_at WHEN last_synced_at <> '' AND last_synced_at NOT GLOB '*[^0-9]*' THEN CAST(last_synced_at AS INTEGER) ELSE CAST(round((julianday(last_synced_at) - 2440587.5) * 86400000.0) AS INTEGER) END, enabled FROM l.calendar_subscriptions WHERE name IS NOT NULL AND url IS NOT NULL ORDER BY id;
INSERT OR IGNORE INTO c.project_domains (id, project_id, domain)
SELECT id, project_id, domain FROM l.project_domains WHERE domain IS NOT NULL AND project_id IN (SELECT id FROM c.projects) ORDER BY id;
INSERT OR IGNORE INTO c.project_calendar_keywords (id, project_id, keyword)
SELECT id, project_id, keyword FROM l.project_calendar_keywords WHERE keyword IS NOT NULL AND project_id IN (SELECT id FROM c.projects) ORDER BY id;
INSERT INTO c.calendar_events (id, subscription_id, uid, title, start_time_ms, end_time_ms, project_id)
SELECT * FROM (SELECT id, subscription_id, uid, title, CASE WHEN start_time IS NULL THEN NULL WHEN typeof(start_time) = 'integer' THEN start_time WHEN start_time <> '' AND start_time NOT GLOB '*[^0-9]*' THEN CAST(start_time AS INTEGER) ELSE CAST(round((julianday(start_time) - 2440587.5) * 86400000.0) AS INTEGER) END AS s, CASE WHEN end_time IS NULL THEN NULL WHEN typeof(end_time) = 'integer' THEN end_time WHEN end_time <> '' AND end_time NOT GLOB '*[^0-9]*' THEN CAST(end_time AS INTEGER) ELSE CAST(round((julianday(end_time) - 2440587.5) * 86400000.0) AS INTEGER) END, project_id
               FROM l.calendar_events WHERE uid IS NOT NULL AND subscription_id IN (SELECT id FROM c.calendar_subscriptions) ORDER BY id)
WHERE s IS NOT NULL;
INSERT INTO c.settings (rowid, key, value, updated_at_ms, secret)
SELECT rowid, key, value, CASE WHEN updated_at IS NULL THEN NULL WHEN typeof(updated_at) = 'integer' THEN updated_at WHEN updated_at <> '' AND updated_at NOT GLOB '*[^0-9]*' THEN CAST(updated_at AS INTEGER) ELSE CAST(round((julianday(updated_at) - 2440587.5) * 86400000.0) AS INTEGER) END, key LIKE '%token%' OR key LIKE '%secret%' OR key LIKE '%password%' OR key LIKE '%passwd%' OR key LIKE '%api_key%' OR key LIKE '%apikey%' OR key LIKE '%api-key%' OR key LIKE '%credential%' FROM l.settings WHERE key IS NOT NULL ORDER BY rowid;
COMMIT;

BEGIN;
INSERT INTO main.activity_sessions (id, app, title, url, domain, project_id, start_time_ms, end_time_ms, duration_seconds, is_idle, end_reason)
SELECT * FROM (SELECT id, app, title, url, domain, project_id, CASE WHEN start_time IS NULL THEN NULL WHEN typeof(start_time) = 'integer' THEN start_time WHEN start_time <> '' AND start_time NOT GLOB '*[^0-9]*' THEN CAST(start_time AS INTEGER) ELSE CAST(round((julianday(start_time) - 2440587.5) * 86400000.0) AS INTEGER) END AS s, CASE WHEN end_time IS NULL THEN NULL WHEN typeof(end_time) = 'integer' THEN end_time WHEN end_time <> '' AND end_time NOT GLOB '*[^0-9]*' THEN CAST(end_time AS INTEGER) ELSE CAST(round((julianday(end_time) - 2440587.5) * 86400000.0) AS INTEGER) END AS e,
                      duration_seconds, is_idle, CASE WHEN end_time IS NOT NULL THEN 'ended' END
               FROM l.activity_sessions WHERE app IS NOT NULL ORDER BY id)
WHERE s IS NOT NULL;
COMMIT;
BEGIN;
INSERT INTO main.activity_events (id, session_id, event_type, app, title, url, timestamp_ms, idle_seconds)
SELECT * FROM (SELECT id, session_id, event_type, app, title, url, CASE WHEN timestamp IS NULL THEN NULL WHEN typeof(timestamp) = 'integer' THEN timestamp WHEN timestamp <> '' AND timestamp NOT GLOB '*[^0-9]*' THEN CAST(timestamp AS INTEGER) ELSE CAST(round((julianday(timestamp) - 2440587.5) * 86400000.0) AS INTEGER) END AS t, idle_seconds
               FROM l.activity_events WHERE event_type IS NOT NULL ORDER BY id)
WHERE t IS NOT NULL;
COMMIT;

BEGIN;
UPDATE main.sqlite_sequence SET seq = max(seq, IFNULL((SELECT seq FROM l.sqlite_sequence s WHERE s.name = main.sqlite_sequence.name), 0));
UPDATE c.sqlite_sequence SET seq = max(seq, IFNULL((SELECT seq FROM l.sqlite_sequence s WHERE s.name = c.sqlite_sequence.name), 0));
CREATE INDEX c.project_domains_domain ON project_domains (domain COLLATE NOCASE);
CREATE INDEX c.calendar_events_subscription ON calendar_events (subscription_id);
CREATE INDEX c.calendar_events_start ON calendar_events (start_time_ms);
CREATE INDEX c.calendar_events_project ON calendar_events (project_id, start_time_ms);
CREATE INDEX c.calendar_events_long ON calendar_events (end_time_ms) WHERE end_time_ms - start_time_ms > 86400000;
CREATE INDEX main.activity_sessions_start ON activity_sessions (start_time_ms, project_id, duration_seconds);
CREATE INDEX main.activity_sessions_project ON activity_sessions (project_id, start_time_ms);
CREATE INDEX main.activity_sessions_end ON activity_sessions (end_time_ms);
CREATE INDEX main.activity_sessions_long ON activity_sessions (end_time_ms) WHERE end_time_ms - start_time_ms > 86400000;
CREATE INDEX main.activity_events_session ON activity_events (session_id, timestamp_ms);
CREATE INDEX main.activity_events_timestamp ON activity_events (timestamp_ms);
INSERT INTO main.activity_totals (has_project, project_id, bucket_ms, sessions, seconds)
SELECT has_project, project_id, bucket_ms,
       SUM(ended) OVER running, SUM(seconds) OVER running
FROM (SELECT project_id IS NOT NULL AS has_project, IFNULL(project_id, 0) AS project_id,
             start_time_ms - (start_time_ms % 900000 + 900000) % 900000 AS bucket_ms,
             COUNT(*) AS ended, SUM(IFNULL(duration_seconds, 0)) AS seconds
      FROM main.activity_sessions
      WHERE end_time_ms IS NOT NULL
      GROUP BY 1, 2, 3
      ORDER BY 1, 2, 3)
WINDOW running AS (PARTITION BY has_project, project_id ORDER BY bucket_ms ROWS UNBOUNDED PRECEDING);
PRAGMA main.application_id = 1397771329;
PRAGMA main.user_version = 5;
PRAGMA c.application_id = 1397771331;
PRAGMA c.user_version = 3;
COMMIT;

-- Every row read back.
SELECT count(*), total(id), total(length(app)), total(length(title)), total(length(url)), total(length(domain)),
       total(project_id), total(start_time_ms), total(end_time_ms), total(duration_seconds), total(is_idle),
       total(length(end_reason))
FROM main.activity_sessions;
SELECT count(*), total(id), total(session_id), total(length(event_type)), total(length(app)), total(length(title)),
       total(length(url)), total(timestamp_ms), total(idle_seconds)
FROM main.activity_events;
SELECT count(*), total(length(name)), total(length(color)), total(created_at_ms) FROM c.projects;
SELECT count(*), total(length(uid)), total(length(title)), total(start_time_ms), total(end_time_ms) FROM c.calendar_events;

PRAGMA main.quick_check;
PRAGMA c.quick_check;
PRAGMA main.foreign_key_check;
PRAGMA c.foreign_key_check;
PRAGMA main.synchronous = NORMAL;
PRAGMA c.synchronous = NORMAL;
PRAGMA main.journal_mode = WAL;
PRAGMA c.journal_mode = WAL;
