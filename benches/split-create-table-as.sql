-- The floor for a split: every legacy table copied as it is into activity.db (main) and config.db, by
-- SQLite alone: no conversion, no index, no check (what benches/split.rs calls `rusqlite ATTACH + CREATE
-- TABLE AS`). Run in a directory holding legacy.db (or a link to it):
--   sqlite3 activity.db < benches/split-create-table-as.sql
-- Same posture as the split's load: rollback journal, synchronous=NORMAL.
.bail on
PRAGMA main.journal_mode = DELETE;
PRAGMA main.synchronous = NORMAL;
ATTACH 'file:legacy.db?mode=ro' AS l;
ATTACH 'config.db' AS c;
PRAGMA c.journal_mode = DELETE;
PRAGMA c.synchronous = NORMAL;
CREATE TABLE c.projects AS SELECT * FROM l.projects;
CREATE TABLE c.calendar_subscriptions AS SELECT * FROM l.calendar_subscriptions;
CREATE TABLE c.project_domains AS SELECT * FROM l.project_domains;
CREATE TABLE c.project_calendar_keywords AS SELECT * FROM l.project_calendar_keywords;
CREATE TABLE c.calendar_events AS SELECT * FROM l.calendar_events;
CREATE TABLE c.settings AS SELECT * FROM l.settings;
CREATE TABLE main.activity_sessions AS SELECT * FROM l.activity_sessions;
CREATE TABLE main.activity_events AS SELECT * FROM l.activity_events;
