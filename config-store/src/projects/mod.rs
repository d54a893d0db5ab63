//! Projects, the domains that attribute web activity to them, and the keywords that attribute calendar
//! events to them.
//!
//! # Domains
//! A domain is stored normalized ([`normalize_domain`]): trimmed, lower-cased, without a leading `*.` or
//! leading/trailing dots. So `GitHub.com`, `github.com.` and `*.github.com` are the same domain, and a
//! project cannot list it twice (`UNIQUE (project_id, domain)`). Anything that is not a host name (a URL, a
//! path, spaces, a control character such as NUL, an empty label as in `a..b`, more than DNS allows: 253
//! characters in all, 63 in a label) is refused with [`Error::InvalidInput`] instead of being stored where
//! nothing would match it. Legacy rows that migrate-split copied are kept exactly as written, whatever they
//! hold.
//!
//! # Which project owns a host ([`ConfigReader::project_for_domain`](crate::ConfigReader::project_for_domain))
//! - A listed domain matches itself and every subdomain: `example.com` matches `www.example.com` and
//!   `a.b.example.com`, never `notexample.com`.
//! - The most specific listed domain wins: with `example.com` on project 1 and `docs.example.com` on
//!   project 2, `docs.example.com` and `x.docs.example.com` belong to 2, `www.example.com` to 1.
//! - Archived projects never match (new activity is not attributed to an archived project).
//! - Several non-archived projects may list the same domain (the legacy data does); the lowest id wins,
//!   which is stable: ids are never reused.
//! - A host holding a control character, or longer than 253 characters, is no host name and belongs to no
//!   project (nothing is looked up).
//!
//! # Keywords
//! Stored trimmed, case kept; a project cannot list the same keyword twice.

pub(crate) mod queries;
pub(crate) mod repo;

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{Broken, Error, Result, broken_rule, store};

/// A project to create, with its domains and calendar keywords (all in one transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProject {
    /// Trimmed; must not be empty nor hold a control character (NUL, a newline or tab inside...).
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub archived: bool,
    /// Normalized with [`normalize_domain`]; listing one twice is [`Error::DuplicateDomain`].
    #[serde(default)]
    pub domains: Vec<String>,
    /// Trimmed; listing one twice is [`Error::DuplicateKeyword`].
    #[serde(default)]
    pub keywords: Vec<String>,
}

impl NewProject {
    /// A project with this name and nothing else.
    pub fn named(name: impl Into<String>) -> NewProject {
        NewProject {
            name: name.into(),
            ..NewProject::default()
        }
    }
}

/// A project as stored, with its domains and keywords in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// The legacy id, kept: activity sessions and calendar events refer to it.
    pub id: i64,
    pub name: String,
    pub color: Option<String>,
    /// `None` for legacy projects whose creation time was missing or unreadable.
    pub created_at: Option<DateTime<Utc>>,
    pub archived: bool,
    pub domains: Vec<String>,
    pub keywords: Vec<String>,
}

/// A project without its domains and keywords: what a report needs to name and classify project ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub id: i64,
    pub name: String,
    pub color: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub archived: bool,
}

impl Project {
    fn from_parts(summary: ProjectSummary, domains: Vec<String>, keywords: Vec<String>) -> Project {
        let ProjectSummary {
            id,
            name,
            color,
            created_at,
            archived,
        } = summary;
        Project {
            id,
            name,
            color,
            created_at,
            archived,
            domains,
            keywords,
        }
    }

    /// The project without its domains and keywords.
    pub fn summary(&self) -> ProjectSummary {
        ProjectSummary {
            id: self.id,
            name: self.name.clone(),
            color: self.color.clone(),
            created_at: self.created_at,
            archived: self.archived,
        }
    }
}

/// Changes to a project: each `None` field is left as it is; all of it is one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectUpdate {
    #[serde(default)]
    pub name: Option<String>,
    /// `Some(None)` clears the color (JSON: `"color": null`; an absent field leaves it).
    #[serde(default, deserialize_with = "crate::serde_fields::present")]
    pub color: Option<Option<String>>,
    #[serde(default)]
    pub archived: Option<bool>,
    /// Replaces the list: domains not in it are removed, new ones added, kept ones keep their row.
    #[serde(default)]
    pub domains: Option<Vec<String>>,
    /// Replaces the list, like `domains`.
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
}

/// The most characters a domain has, dots included (DNS: 253 in the dotted form of a name).
const MAX_DOMAIN_CHARS: usize = 253;
/// The most characters a dot-separated label of a domain has (DNS).
const MAX_LABEL_CHARS: usize = 63;

/// Why an input is not a domain that can be stored.
enum NotADomain {
    /// Nothing is left, or whitespace or one of `/ ? # @` (a URL, a path, an address).
    NotAHost,
    /// A control character (NUL, DEL, U+0080..U+009F...) other than whitespace.
    Control(char),
    /// More characters than DNS allows in a name.
    TooLong(usize),
    /// Two dots in a row.
    EmptyLabel,
    /// A label with more characters than DNS allows.
    LabelTooLong(usize),
}

fn normalized(input: &str) -> std::result::Result<String, NotADomain> {
    let lower = input.trim().to_lowercase();
    let host = lower.strip_prefix("*.").unwrap_or(&lower).trim_matches('.');
    let unusable = |c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@');
    if host.is_empty() || host.contains(unusable) {
        return Err(NotADomain::NotAHost);
    }
    if let Some(c) = host.chars().find(|c| c.is_control()) {
        return Err(NotADomain::Control(c));
    }
    let chars = host.chars().count();
    if chars > MAX_DOMAIN_CHARS {
        return Err(NotADomain::TooLong(chars));
    }
    for label in host.split('.') {
        match label.chars().count() {
            0 => return Err(NotADomain::EmptyLabel),
            n if n > MAX_LABEL_CHARS => return Err(NotADomain::LabelTooLong(n)),
            _ => {}
        }
    }
    Ok(host.to_string())
}

/// The stored form of a domain: trimmed, lower-cased, without a leading `*.` and without leading or
/// trailing dots. `None` if nothing is left or it is not a host name: whitespace inside, any of `/ ? # @`
/// (as in a URL), a control character (NUL...), an empty label (`a..b`), more than 253 characters in all or
/// more than 63 in a label (DNS's limits, counted in characters: a name that is not ASCII is not converted to
/// its `xn--` form first). Writers of config.db store new domains in this form; migrate-split keeps legacy
/// rows exactly as written.
pub fn normalize_domain(input: &str) -> Option<String> {
    normalized(input).ok()
}

/// `input` quoted for a message, cut short if it is long (a domain field may hold anything).
fn quoted(input: &str) -> String {
    const SHOWN: usize = 80;
    let chars = input.chars().count();
    if chars <= SHOWN {
        return format!("{input:?}");
    }
    let start: String = input.chars().take(SHOWN).collect();
    format!("{start:?}... ({chars} characters)")
}

/// What [`ConfigReader::project_for_domain`](crate::ConfigReader::project_for_domain) looks up for `host`,
/// most specific first: the host itself, then each parent domain (`a.b.c` -> `a.b.c`, `b.c`, `c`).
pub(crate) fn lookup_candidates(host: &str) -> Vec<String> {
    let host = host.trim().to_lowercase();
    let host = host.trim_matches('.');
    // No stored domain is such a host: nothing to look up (and no quadratic list of parents of a huge one).
    if host.is_empty() || host.chars().count() > MAX_DOMAIN_CHARS || host.contains(char::is_control) {
        return Vec::new();
    }
    let mut out = vec![host.to_string()];
    out.extend(
        host.match_indices('.')
            .map(|(i, _)| &host[i + 1..])
            .filter(|s| !s.is_empty() && !s.starts_with('.'))
            .map(str::to_string),
    );
    out
}

fn checked_domain(path: &Path, input: &str) -> Result<String> {
    normalized(input).map_err(|why| {
        let input = quoted(input);
        let problem = match why {
            NotADomain::NotAHost => format!(
                "{input} is not a host name: write it like example.com (no scheme, path, spaces or '@'); it also \
                 matches every subdomain"
            ),
            NotADomain::Control(c) => format!(
                "{input} is not a host name: it holds the control character U+{:04X}; write it like example.com, \
                 with no control characters",
                u32::from(c)
            ),
            NotADomain::TooLong(n) => format!(
                "{input} is not a host name: it has {n} characters, and a host name has at most \
                 {MAX_DOMAIN_CHARS} (each dot-separated label 1 to {MAX_LABEL_CHARS})"
            ),
            NotADomain::EmptyLabel => format!(
                "{input} is not a host name: it has an empty label (two dots in a row); write it like \
                 example.com, each dot-separated label 1 to {MAX_LABEL_CHARS} characters"
            ),
            NotADomain::LabelTooLong(n) => format!(
                "{input} is not a host name: it has a label of {n} characters, and each dot-separated label has \
                 1 to {MAX_LABEL_CHARS} ({MAX_DOMAIN_CHARS} in all)"
            ),
        };
        Error::InvalidInput {
            path: path.to_path_buf(),
            field: "domain",
            problem,
        }
    })
}

fn checked_keyword(path: &Path, input: &str) -> Result<String> {
    let keyword = input.trim();
    if keyword.is_empty() {
        return Err(Error::InvalidInput {
            path: path.to_path_buf(),
            field: "calendar keyword",
            problem: "is empty".into(),
        });
    }
    Ok(keyword.to_string())
}

fn checked_name(path: &Path, input: &str) -> Result<String> {
    let name = input.trim();
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        format!(
            "holds the control character U+{:04X}: a project name is one line of text, with no control characters \
             (NUL, tab, newline...)",
            u32::from(c)
        )
    } else {
        return Ok(name.to_string());
    };
    Err(Error::InvalidInput {
        path: path.to_path_buf(),
        field: "project name",
        problem,
    })
}

/// Normalizes a list of domains and refuses one listed twice, before anything is written.
fn checked_domains(path: &Path, project_id: Option<i64>, input: &[String]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    input
        .iter()
        .map(|d| {
            let domain = checked_domain(path, d)?;
            if !seen.insert(domain.clone()) {
                return Err(Error::DuplicateDomain {
                    path: path.to_path_buf(),
                    project_id,
                    domain,
                });
            }
            Ok(domain)
        })
        .collect()
}

fn checked_keywords(path: &Path, project_id: Option<i64>, input: &[String]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    input
        .iter()
        .map(|k| {
            let keyword = checked_keyword(path, k)?;
            if !seen.insert(keyword.clone()) {
                return Err(Error::DuplicateKeyword {
                    path: path.to_path_buf(),
                    project_id,
                    keyword,
                });
            }
            Ok(keyword)
        })
        .collect()
}

/// Inserts a normalized domain, naming the broken rule: an existing row is a duplicate, a missing parent
/// is a missing project.
fn insert_domain(conn: &Connection, path: &Path, project_id: i64, domain: String) -> Result<()> {
    repo::insert_domain(conn, project_id, &domain).map_err(|e| match broken_rule(&e) {
        Some(Broken::Unique) => Error::DuplicateDomain {
            path: path.to_path_buf(),
            project_id: Some(project_id),
            domain,
        },
        Some(Broken::ForeignKey) => Error::ProjectNotFound {
            path: path.to_path_buf(),
            id: project_id,
        },
        None => store(path, e),
    })
}

fn insert_keyword(conn: &Connection, path: &Path, project_id: i64, keyword: String) -> Result<()> {
    repo::insert_keyword(conn, project_id, &keyword).map_err(|e| match broken_rule(&e) {
        Some(Broken::Unique) => Error::DuplicateKeyword {
            path: path.to_path_buf(),
            project_id: Some(project_id),
            keyword,
        },
        Some(Broken::ForeignKey) => Error::ProjectNotFound {
            path: path.to_path_buf(),
            id: project_id,
        },
        None => store(path, e),
    })
}

/// Inside the caller's transaction: the project row, then its domains, then its keywords.
pub(crate) fn create(conn: &Connection, path: &Path, new: &NewProject, now: DateTime<Utc>) -> Result<Project> {
    let name = checked_name(path, &new.name)?;
    // Input is checked before the first write (a duplicate names no project: it has no id yet).
    let domains = checked_domains(path, None, &new.domains)?;
    let keywords = checked_keywords(path, None, &new.keywords)?;
    let created_at_ms = store_core::time::to_ms(now);
    let id = repo::insert_project(conn, &name, new.color.as_deref(), created_at_ms, new.archived)
        .map_err(|e| store(path, e))?;
    for domain in domains {
        insert_domain(conn, path, id, domain)?;
    }
    for keyword in keywords {
        insert_keyword(conn, path, id, keyword)?;
    }
    read_back(conn, path, id)
}

/// Inside the caller's transaction: the scalar fields, then the domain and keyword lists if given.
pub(crate) fn update(conn: &Connection, path: &Path, id: i64, update: &ProjectUpdate) -> Result<Project> {
    let name = update.name.as_deref().map(|n| checked_name(path, n)).transpose()?;
    let domains = update
        .domains
        .as_deref()
        .map(|d| checked_domains(path, Some(id), d))
        .transpose()?;
    let keywords = update
        .keywords
        .as_deref()
        .map(|k| checked_keywords(path, Some(id), k))
        .transpose()?;
    let color = update.color.as_ref().map(|c| c.as_deref());
    let exists = repo::update_project(conn, id, name.as_deref(), color, update.archived).map_err(|e| store(path, e))?;
    if !exists {
        return Err(Error::ProjectNotFound {
            path: path.to_path_buf(),
            id,
        });
    }
    if let Some(wanted) = domains {
        let current = repo::domains_of(conn, id).map_err(|e| store(path, e))?;
        for old in current.iter().filter(|d| !wanted.contains(d)) {
            repo::delete_domain(conn, id, old, old).map_err(|e| store(path, e))?;
        }
        for new in wanted.into_iter().filter(|d| !current.contains(d)) {
            insert_domain(conn, path, id, new)?;
        }
    }
    if let Some(wanted) = keywords {
        let current = repo::keywords_of(conn, id).map_err(|e| store(path, e))?;
        for old in current.iter().filter(|k| !wanted.contains(k)) {
            repo::delete_keyword(conn, id, old, old).map_err(|e| store(path, e))?;
        }
        for new in wanted.into_iter().filter(|k| !current.contains(k)) {
            insert_keyword(conn, path, id, new)?;
        }
    }
    read_back(conn, path, id)
}

/// Adds one domain; returns it as stored (normalized).
pub(crate) fn add_domain(conn: &Connection, path: &Path, project_id: i64, domain: &str) -> Result<String> {
    let domain = checked_domain(path, domain)?;
    insert_domain(conn, path, project_id, domain.clone())?;
    Ok(domain)
}

/// Removes a domain given as stored or in any spelling that normalizes to it.
pub(crate) fn remove_domain(conn: &Connection, path: &Path, project_id: i64, domain: &str) -> Result<bool> {
    let normalized = normalize_domain(domain).unwrap_or_default();
    repo::delete_domain(conn, project_id, domain, &normalized).map_err(|e| store(path, e))
}

/// Adds one keyword; returns it as stored (trimmed).
pub(crate) fn add_keyword(conn: &Connection, path: &Path, project_id: i64, keyword: &str) -> Result<String> {
    let keyword = checked_keyword(path, keyword)?;
    insert_keyword(conn, path, project_id, keyword.clone())?;
    Ok(keyword)
}

/// Removes a keyword given as stored or with surrounding whitespace.
pub(crate) fn remove_keyword(conn: &Connection, path: &Path, project_id: i64, keyword: &str) -> Result<bool> {
    repo::delete_keyword(conn, project_id, keyword, keyword.trim()).map_err(|e| store(path, e))
}

fn read_back(conn: &Connection, path: &Path, id: i64) -> Result<Project> {
    repo::project(conn, id)
        .map_err(|e| store(path, e))?
        .ok_or_else(|| Error::ProjectNotFound {
            path: path.to_path_buf(),
            id,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_normalize_to_one_spelling() {
        for spelling in [
            "example.com",
            " Example.COM ",
            "example.com.",
            "*.example.com",
            ".example.com",
        ] {
            assert_eq!(
                normalize_domain(spelling).as_deref(),
                Some("example.com"),
                "{spelling:?}"
            );
        }
        assert_eq!(normalize_domain("localhost:3000").as_deref(), Some("localhost:3000"));
        assert_eq!(normalize_domain("Bücher.DE").as_deref(), Some("bücher.de"));
    }

    #[test]
    fn what_is_not_a_host_name_is_refused() {
        for bad in [
            "",
            "  ",
            ".",
            "*.",
            "https://example.com",
            "example.com/path",
            "a b.com",
            "user@host",
            "x.com?q",
            "\0",
            "a\0b.com",
            "a\u{7f}.com",
            "a\u{85}b.com",
            "a..b",
            "*.a..b.",
            &"x".repeat(64),
            &format!("{}.com", "x".repeat(64)),
            &vec!["a".repeat(63); 4].join("."),
        ] {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
        // DNS's limits themselves are allowed: 63 in a label, 253 in all.
        let longest = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(61));
        assert_eq!(longest.len(), 253);
        assert_eq!(normalize_domain(&longest).as_deref(), Some(longest.as_str()));
        assert_eq!(
            normalize_domain(&format!("{longest}.")).as_deref(),
            Some(longest.as_str())
        );
        assert_eq!(normalize_domain(&format!("{longest}x")), None);
    }

    #[test]
    fn lookups_try_the_host_then_each_parent() {
        assert_eq!(
            lookup_candidates(" WWW.Docs.Example.com. "),
            ["www.docs.example.com", "docs.example.com", "example.com", "com"]
        );
        assert_eq!(lookup_candidates("localhost"), ["localhost"]);
        assert!(lookup_candidates(" . ").is_empty());
        assert_eq!(lookup_candidates("a..b"), ["a..b", "b"]);
        for no_host in ["\0", "a\0b.com", &format!("{}.com", "a.".repeat(200))] {
            assert!(lookup_candidates(no_host).is_empty(), "{no_host:?}");
        }
    }
}
