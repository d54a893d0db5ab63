//! The rejects file: one JSON object per line for every legacy row the split could not keep, so no row is
//! ever dropped silently. `{"table": ..., "id": ..., "row": {column: value, ...}, "reason": ...}`, where `row`
//! is the raw legacy row, less its secrets: settings values replaced by `"<redacted>"`, calendar feed URLs
//! (which carry private tokens) cut to their scheme and host (`https://calendar.example.com/<redacted>`).
//! The values stay in the legacy file.
//! Created 0600 only when the first row is rejected.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use serde_json::{Map, Value, json};

use crate::error::{Result, SplitError};

/// What replaces a redacted value in the rejects file.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug)]
pub(crate) struct RejectsFile {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl RejectsFile {
    /// A rejects file that will be created at `path` on the first reject.
    pub fn new(path: &Path) -> RejectsFile {
        RejectsFile {
            path: path.to_path_buf(),
            out: None,
        }
    }

    /// Appends one rejected row.
    pub fn write(&mut self, table: &str, id: Option<i64>, row: Map<String, Value>, reason: &str) -> Result<()> {
        if self.out.is_none() {
            let file = store_core::files::create_private_new(&self.path)?;
            self.out = Some(BufWriter::new(file));
        }
        let line = json!({ "table": table, "id": id, "row": row, "reason": reason });
        let out = self.out.as_mut().expect("opened above");
        serde_json::to_writer(&mut *out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| SplitError::io(&self.path, "write", e))
    }

    /// Flushes and fsyncs the file; returns its path if any row was rejected.
    pub fn finish(self) -> Result<Option<PathBuf>> {
        let Some(out) = self.out else { return Ok(None) };
        let file = out
            .into_inner()
            .map_err(|e| SplitError::io(&self.path, "write", e.into_error()))?;
        file.sync_all().map_err(|e| SplitError::io(&self.path, "fsync", e))?;
        Ok(Some(self.path))
    }
}

/// A raw legacy value as JSON: numbers and text as they are, a blob (or text that is not UTF-8) as hex.
pub(crate) fn json_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) => json!(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => json!(s),
            Err(_) => json!({ "text_hex": store_core::schema::hex(t) }),
        },
        ValueRef::Blob(b) => json!({ "blob_hex": store_core::schema::hex(b) }),
    }
}
