-- The calendar report as one SQL JOIN over activity.db with config.db ATTACHed as `cfg`: each calendar event
-- overlapping [?1, ?2) with every ended session sharing time with it, and the time on its own project.
-- Columns: event id, project name, project id, whether config.db has the project, whether it is archived,
-- tracked ms, ms on the event's project. The oracle of tests/joins.rs and the plain way of benches/report.rs.
SELECT e.id, p.name, e.project_id, p.id IS NOT NULL, coalesce(p.archived, 0),
       coalesce(sum(max(0, min(e.end_time_ms, s.end_time_ms) - max(e.start_time_ms, s.start_time_ms))), 0),
       coalesce(sum(CASE WHEN s.project_id = e.project_id
           THEN max(0, min(e.end_time_ms, s.end_time_ms) - max(e.start_time_ms, s.start_time_ms)) END), 0)
FROM cfg.calendar_events e
LEFT JOIN cfg.projects p ON p.id = e.project_id
LEFT JOIN activity_sessions s
       ON s.end_time_ms IS NOT NULL AND s.start_time_ms < e.end_time_ms AND s.end_time_ms > e.start_time_ms
WHERE ?1 < ?2 AND e.start_time_ms < ?2
  AND max(coalesce(e.end_time_ms, e.start_time_ms), e.start_time_ms + 1) > ?1
GROUP BY e.id ORDER BY e.start_time_ms, e.id
