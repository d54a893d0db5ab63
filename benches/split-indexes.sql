-- The indexes activity.db's schema has, built by sqlite3 on the tables `split-create-table-as.sql` copied
-- (on their legacy columns: the times still text). Run right after that script, in the same session:
--   cat benches/split-create-table-as.sql benches/split-indexes.sql | sqlite3 activity.db
-- For benches/split-vs-sqlite3.sh: what a bare copy costs once it has the schema's indexes.
CREATE INDEX main.activity_events_session ON activity_events (session_id, timestamp);
CREATE INDEX main.activity_events_timestamp ON activity_events (timestamp);
CREATE INDEX main.activity_sessions_end ON activity_sessions (end_time);
CREATE INDEX main.activity_sessions_long ON activity_sessions (end_time) WHERE end_time - start_time > 86400000;
CREATE INDEX main.activity_sessions_project ON activity_sessions (project_id, start_time);
CREATE INDEX main.activity_sessions_start ON activity_sessions (start_time, project_id, duration_seconds);
