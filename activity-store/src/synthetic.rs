//! Plausible activity for load generators, examples and benches: a deterministic stream of sessions and
//! events, the same every run (enabled by the `synthetic` feature).

use chrono::{DateTime, Utc};

use crate::{NewEvent, NewSession};

/// Plausible activity, deterministic (a fixed-seed xorshift: no dependency, same stream every run): sessions
/// of an app (editor, browser on a few sites, chat...) whose events repeat it with small variations.
#[derive(Debug)]
pub struct Generator {
    state: u64,
    project_ids: Vec<Option<i64>>,
    sessions: usize,
    session: Shape,
}

/// What the current session is about; its events repeat it with small variations.
#[derive(Debug, Clone, Copy)]
struct Shape {
    app: &'static str,
    domain: Option<&'static str>,
    task: u64,
}

const APPS: &[(&str, Option<&str>)] = &[
    ("code", None),
    ("firefox", Some("docs.rs")),
    ("firefox", Some("github.com")),
    ("slack", Some("app.slack.com")),
    ("terminal", None),
    ("figma", Some("figma.com")),
];
const EVENT_TYPES: &[&str] = &["focus", "title_change", "url_change", "input", "input", "input"];

impl Generator {
    /// A generator whose sessions go to `project_ids` in turn (`None`: no project). Empty means no project.
    pub fn new(project_ids: Vec<Option<i64>>) -> Generator {
        let project_ids = if project_ids.is_empty() {
            vec![None]
        } else {
            project_ids
        };
        Generator {
            state: 0x9E37_79B9_7F4A_7C15,
            project_ids,
            sessions: 0,
            session: Shape {
                app: APPS[0].0,
                domain: APPS[0].1,
                task: 0,
            },
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// The next session, starting at `start`.
    pub fn session(&mut self, start: DateTime<Utc>) -> NewSession {
        let (app, domain) = APPS[(self.next() % APPS.len() as u64) as usize];
        let shape = Shape {
            app,
            domain,
            task: self.next() % 1000,
        };
        let project_id = self.project_ids[self.sessions % self.project_ids.len()];
        self.sessions += 1;
        self.session = shape;
        NewSession {
            app: app.to_string(),
            title: Some(shape.title()),
            url: shape.url(0),
            domain: domain.map(str::to_string),
            project_id,
            start,
            is_idle: false,
        }
    }

    /// The next event of session `session_id` (the last one started), at `at`.
    pub fn event(&mut self, session_id: i64, at: DateTime<Utc>) -> NewEvent {
        let shape = self.session;
        let r = self.next();
        let event_type = EVENT_TYPES[(r % EVENT_TYPES.len() as u64) as usize];
        NewEvent {
            session_id: Some(session_id),
            event_type: event_type.to_string(),
            app: Some(shape.app.to_string()),
            title: Some(shape.title()),
            url: shape.url(r % 16),
            at,
            idle_seconds: None,
        }
    }
}

impl Shape {
    fn title(&self) -> String {
        format!("{} - task {}", self.app, self.task)
    }

    fn url(&self, page: u64) -> Option<String> {
        self.domain.map(|d| format!("https://{d}/task/{}/{page}", self.task))
    }
}
