//! Encryption at rest: the key an application supplies, and how every connection is keyed with it.
//!
//! With the `encryption` feature, SQLite is SQLCipher: a connection keyed with `PRAGMA key` as its first
//! statement reads and writes every page of the database, its `-wal` and its journal encrypted (AES-256,
//! each page authenticated with an HMAC). The application supplies a [`Key`] of 32 random bytes (kept, say,
//! in the operating system's keychain); it is passed as a raw key (`x'<64 hex>'`), so no password
//! derivation runs at each open. Every connection to a database is keyed with the same key: the owner's,
//! the readers' (and their change watcher), the one-off read-only ones, backups and their checks, restore,
//! repair, salvage and the snapshots of diagnostics. A backup is a page-exact copy made between two
//! connections keyed with the same key, so it is encrypted with that key too.
//!
//! Without the feature, a key is refused ([`Error::EncryptionUnavailable`]): a database is never written in
//! the clear when its application asked for it to be encrypted.
//!
//! SQLCipher cannot tell a wrong key from damage: both fail the first read with `SQLITE_NOTADB`. What the
//! data directory recorded about the file at its owner's last successful open ([`records`]: whether it was
//! encrypted, and a check value of the key) tells them apart ([`explain_not_a_database`]); so a wrong key is
//! [`Error::KeyRejected`], never damage, and nothing is ever moved aside for it.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::files::sqlite_path;
use crate::records;

/// Bytes in a key: 256 bits.
pub const KEY_BYTES: usize = 32;

/// Whether this build encrypts (built with the `encryption` feature, SQLCipher in place of SQLite).
pub const fn encryption_available() -> bool {
    cfg!(feature = "encryption")
}

/// The key of an encrypted database: 32 bytes, wiped from memory when dropped. `Debug` never shows it, and
/// it has no `Display`.
#[derive(Clone)]
pub struct Key(Box<[u8; KEY_BYTES]>);

impl Key {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Key {
        let mut bytes = bytes;
        let key = Key(Box::new(bytes));
        bytes.zeroize();
        key
    }

    /// A key written as 64 hexadecimal characters (surrounding whitespace, such as a file's last newline,
    /// is ignored). The error never repeats the text.
    pub fn from_hex(text: &str) -> std::result::Result<Key, String> {
        let text = text.trim();
        if text.len() != 2 * KEY_BYTES {
            return Err(format!(
                "a key is {} hexadecimal characters (256 bits); this holds {} characters",
                2 * KEY_BYTES,
                text.chars().count()
            ));
        }
        let mut key = Key(Box::new([0u8; KEY_BYTES]));
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => key.0[i] = (hi * 16 + lo) as u8,
                _ => return Err("a key holds only hexadecimal characters (0-9, a-f)".into()),
            }
        }
        Ok(key)
    }

    /// A new random key, from the operating system's random source.
    pub fn generate() -> std::io::Result<Key> {
        let mut key = Key(Box::new([0u8; KEY_BYTES]));
        File::open("/dev/urandom")?.read_exact(&mut key.0[..])?;
        Ok(key)
    }

    /// Reads a key file: the key as 64 hexadecimal characters, in a regular file only its owner may read or
    /// write (`chmod 600`). A file others may read or write is refused (the key would not be secret, or
    /// could be replaced), and no error ever shows the file's content.
    pub fn read_file(path: &Path) -> Result<Key> {
        let bad = |problem: String| Error::BadKeyFile {
            path: path.to_path_buf(),
            problem,
        };
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, "read the key file", e))?;
        if !meta.is_file() {
            return Err(bad("is not a regular file".into()));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o066 != 0 {
            return Err(bad(format!(
                "may be read or written by other users (mode {mode:04o}), so the key is not secret: `chmod 600 {}`, \
                 and since others could read it, consider the key compromised and rotate it",
                crate::files::shell_quoted(path)
            )));
        }
        if meta.len() > 4096 {
            return Err(bad(format!("is {} bytes, not a key file", meta.len())));
        }
        let mut text = Zeroizing::new(String::new());
        File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => bad("is not text".into()),
                _ => Error::io(path, "read the key file", e),
            })?;
        // Said of the file: "the key file F does not hold a key: a key is 64 ...".
        Key::from_hex(&text).map_err(|why| bad(format!("does not hold a key: {why}")))
    }

    /// Writes the key as 64 hexadecimal characters and a newline to a new file, 0600, fsynced. Fails if
    /// anything exists at `path`.
    pub fn write_file(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let mut file = crate::files::create_private_new(path)?;
        let mut text = self.to_hex();
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(path, "write the key file", e))
    }

    /// The key as 64 lowercase hexadecimal characters, wiped when dropped: for writing it where it is kept,
    /// never for printing.
    pub fn to_hex(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(2 * KEY_BYTES + 1));
        for b in self.0.iter() {
            s.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
            s.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
        }
        s
    }

    /// A check value of the key (the first 16 bytes of SHA-256 over a fixed label and the key, in hex):
    /// recorded beside a database so that a wrong key can be told from damage. It reveals nothing usable
    /// about a random 256-bit key, and no more than a trial decryption of the database would.
    pub fn check_value(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"store-core key check v1\0");
        h.update(&self.0[..]);
        crate::schema::hex(&h.finalize()[..16])
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Keys a new connection to the database at `path`: `PRAGMA key` with the raw key, before any other
/// statement. Nothing without a key. A key on a build without encryption is
/// [`Error::EncryptionUnavailable`]: the database would silently be written in the clear.
pub fn apply(conn: &Connection, path: &Path, key: Option<&Key>) -> Result<()> {
    let Some(key) = key else { return Ok(()) };
    if !encryption_available() {
        return Err(Error::EncryptionUnavailable {
            path: path.to_path_buf(),
        });
    }
    apply_raw(conn, key).map_err(|e| Error::from_sqlite(path, e))
}

/// `PRAGMA key = "x'<hex>'"` (SQLCipher answers it with a row, `ok`, which is read and dropped). The text
/// holding the key is wiped afterwards. Refused on a build without encryption, where SQLite would ignore
/// the pragma and write in the clear.
pub(crate) fn apply_raw(conn: &Connection, key: &Key) -> rusqlite::Result<()> {
    if !encryption_available() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
            Some("this build has no encryption (the `encryption` feature)".into()),
        ));
    }
    quiet_sqlcipher();
    let sql = pragma_with_key("key", key);
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(())
}

/// `<prefix>x'<hex>'<suffix>`, in a buffer allocated once at its final size (no reallocation leaves a copy
/// of the key behind) and wiped when dropped.
fn raw_key_literal(key: &Key, prefix: &str, suffix: &str) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(prefix.len() + 2 * KEY_BYTES + 3 + suffix.len()));
    text.push_str(prefix);
    text.push_str("x'");
    text.push_str(key.to_hex().as_str());
    text.push('\'');
    text.push_str(suffix);
    text
}

/// `PRAGMA <name> = "x'<hex>'"` (see [`raw_key_literal`]).
fn pragma_with_key(name: &str, key: &Key) -> Zeroizing<String> {
    raw_key_literal(key, &format!("PRAGMA {name} = \""), "\"")
}

/// SQLCipher logs a failed page check (a wrong key, damage) on stderr; the typed error already says it, so
/// its log is turned off, once per process (`cipher_log_level` is global), on a connection of its own.
fn quiet_sqlcipher() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        if let Ok(conn) = Connection::open_in_memory() {
            let _ = conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()));
        }
    });
}

/// Changes the key of the open database behind `conn` (`PRAGMA rekey`: every page rewritten under the new
/// key, in one transaction). Both keys are raw keys. Only for an encrypted database keyed already.
///
/// SQLCipher's rekey says nothing of a write that failed: `sqlite3_rekey_v2` rolls its transaction back and
/// returns `SQLITE_OK` (and the pragma "ok"), the file still under the old key. Its journal holds every page,
/// so a disk without as much room again as the file (a quota, a file-size limit) fails it so. The file is
/// therefore read under the new key afterwards: one that does not read is that failed write
/// ([`Error::WriteFailed`], whose remedy is free space), never "the key was rejected" for the caller's next
/// open to say, which sent the user to look for another key.
pub fn rekey(conn: &Connection, path: &Path, new: &Key) -> Result<()> {
    if !encryption_available() {
        return Err(Error::EncryptionUnavailable {
            path: path.to_path_buf(),
        });
    }
    let sql = pragma_with_key("rekey", new);
    (|| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        Ok(())
    })()
    .map_err(|e| Error::from_sqlite(path, e))?;
    if !crate::read_pool::reads_with(path, Some(new)) {
        return Err(Error::WriteFailed {
            path: path.to_path_buf(),
            detail: "the file could not be rewritten under the new key: SQLCipher's rekey rolled back, leaving it \
                     under the old key; it journals every page, so it needs free space the size of the file"
                .into(),
        });
    }
    Ok(())
}

/// Copies the database at `source` (opened with `source_key`, or none) into `dest`, a new empty file,
/// encrypted with `dest_key` (or in the clear with none): SQLCipher's `sqlcipher_export`, which also turns a
/// plaintext database into an encrypted one and back, where `PRAGMA rekey` only changes the key of an
/// encrypted one (and the online backup copies only between connections keyed alike). `auto_vacuum`,
/// `user_version` and `application_id` are carried over too. The source is attached read-only (`mode=ro`).
pub fn export(source: &Path, source_key: Option<&Key>, dest: &Path, dest_key: Option<&Key>) -> Result<()> {
    if !encryption_available() {
        return Err(Error::EncryptionUnavailable {
            path: source.to_path_buf(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(sqlite_path(dest), flags).map_err(|e| Error::from_sqlite(dest, e))?;
    apply(&conn, dest, dest_key)?;
    let source_key_sql = match source_key {
        Some(k) => raw_key_literal(k, "", ""),
        None => Zeroizing::new(String::new()),
    };
    conn.execute(
        "ATTACH DATABASE ?1 AS export_source KEY ?2",
        rusqlite::params![
            crate::files::file_uri(&sqlite_path(source), "mode=ro"),
            source_key_sql.as_str()
        ],
    )
    .map_err(|e| error_at(source, source_key, e))?;
    // sqlcipher_export copies the schema and the rows, not the header fields: auto_vacuum is set before the
    // first table is created, user_version and application_id after.
    let exported = (|| {
        let auto_vacuum: i64 = conn.query_row("PRAGMA export_source.auto_vacuum", [], |r| r.get(0))?;
        conn.execute_batch(&format!("PRAGMA main.auto_vacuum = {auto_vacuum}"))?;
        conn.query_row("SELECT sqlcipher_export('main', 'export_source')", [], |_| Ok(()))?;
        let version: i64 = conn.query_row("PRAGMA export_source.user_version", [], |r| r.get(0))?;
        let id: i64 = conn.query_row("PRAGMA export_source.application_id", [], |r| r.get(0))?;
        conn.execute_batch(&format!(
            "PRAGMA main.user_version = {version}; PRAGMA main.application_id = {id};"
        ))
    })();
    let detached = conn.execute_batch("DETACH DATABASE export_source");
    exported.and(detached).map_err(|e| Error::from_sqlite(dest, e))?;
    conn.close().map_err(|(_, e)| Error::from_sqlite(dest, e))
}

/// Whether SQLite reads the file at `path` without a key: it is a plaintext database. Read through a new
/// read-only SQLite connection (never `std::fs`, which would drop the POSIX locks of this process's
/// connections to it: hazards "The ownership lock").
pub fn readable_without_key(path: &Path) -> bool {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    Connection::open_with_flags(sqlite_path(path), flags)
        .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0)))
        .is_ok()
}

/// Whether `key` opens another database of the data directory of `path` (a `.db` file beside it): a data
/// directory's databases share one key, so with no record of this file's key, a first page that `key` does
/// not open is damage, not another key (a directory copied without its private folder).
fn key_opens_a_sibling(path: &Path, key: &Key) -> bool {
    let Ok(entries) = std::fs::read_dir(crate::files::parent_dir(path)) else {
        return false;
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != path && p.extension().is_some_and(|x| x == "db"))
        .any(|p| crate::read_pool::reads_with(&p, Some(key)))
}

/// What a `NotADatabase` met opening `path` with `key` (or none) really is:
/// - with a key: a plaintext database ([`Error::NotEncrypted`]); an encrypted file whose key check value,
///   recorded at its owner's last successful open, is this key's: damage (the error as it is); with no
///   record, damage too when the key opens another database of its directory; otherwise
///   [`Error::KeyRejected`] (a wrong key, or a file that records no key: never taken for damage);
/// - without a key: a file recorded as encrypted is [`Error::KeyRequired`]; anything else stays
///   `NotADatabase`.
///
/// Other errors are returned as they are.
pub fn explain_not_a_database(err: Error, key: Option<&Key>) -> Error {
    let Error::NotADatabase { path, schema } = err else {
        return err;
    };
    let record = records::encryption(&path);
    match key {
        Some(key) => {
            if readable_without_key(&path) {
                return Error::NotEncrypted { path, schema };
            }
            match record {
                Some(r) if r.key_check.as_deref() == Some(key.check_value().as_str()) => {
                    Error::NotADatabase { path, schema }
                }
                // A database an owner opened (its lock file beside it), not a backup: a folder of backups holds
                // other keys' after a rotation.
                None if crate::files::with_suffix(&path, ".lock").is_file() && key_opens_a_sibling(&path, key) => {
                    Error::NotADatabase { path, schema }
                }
                _ => Error::KeyRejected { path, schema },
            }
        }
        None => match record {
            Some(r) if r.encrypted => Error::KeyRequired { path, schema },
            _ => Error::NotADatabase { path, schema },
        },
    }
}

/// What an error met reading a database opened with `key` (or none) really is: a `NotADatabase` told
/// apart as [`explain_not_a_database`] does; and under a key, a bare `SQLITE_ERROR` that SQLCipher's own
/// page check (`PRAGMA cipher_integrity_check`) explains is [`Error::Corrupt`]: a page whose HMAC fails puts
/// SQLCipher's pager in an error state that reports "SQL logic error", where SQLite would say
/// `SQLITE_CORRUPT` (hazards: "Encryption at rest"). Other errors are returned as they are.
pub fn explain(err: Error, key: Option<&Key>) -> Error {
    let generic = matches!(
        &err,
        Error::Sqlite { source: rusqlite::Error::SqliteFailure(f, _), .. } if f.extended_code == rusqlite::ffi::SQLITE_ERROR
    );
    match (&err, key) {
        (Error::NotADatabase { .. }, _) => explain_not_a_database(err, key),
        (Error::Sqlite { path, schema, .. }, Some(key)) if generic => match damaged_pages(path, key) {
            Some(detail) => Error::Corrupt {
                path: path.clone(),
                detail,
                schema: *schema,
            },
            None => err,
        },
        _ => err,
    }
}

/// What a structural check (`quick_check`, `integrity_check`) of the file at `path` opened with `key` found:
/// under a key, when SQLCipher's own page check finds pages that fail, those pages. The first such page ends
/// the reading of the connection that met it (hazards: "Encryption at rest"), so the check's later messages
/// are about pages it could no longer read, not damage.
pub(crate) fn explain_check(path: &Path, key: Option<&Key>, problems: Vec<String>) -> Vec<String> {
    match key
        .filter(|_| !problems.is_empty())
        .and_then(|k| damaged_pages(path, k))
    {
        Some(pages) => vec![pages],
        None => problems,
    }
}

/// What `PRAGMA cipher_integrity_check` reports about the file at `path` under `key` (pages whose HMAC does
/// not verify), or `None` when it reports nothing (or cannot run).
fn damaged_pages(path: &Path, key: &Key) -> Option<String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(sqlite_path(path), flags).ok()?;
    apply_raw(&conn, key).ok()?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA cipher_integrity_check")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .ok()?;
    let shown: Vec<String> = problems.iter().take(5).cloned().collect();
    (!problems.is_empty()).then(|| {
        format!(
            "SQLCipher's page check (cipher_integrity_check) found {} page(s) that fail: {}",
            problems.len(),
            shown.join("; ")
        )
    })
}

/// Maps a SQLite error met on `path` opened with `key` to the typed error, telling a wrong or missing key
/// from damage ([`explain`]).
pub fn error_at(path: &Path, key: Option<&Key>, e: rusqlite::Error) -> Error {
    explain(Error::from_sqlite(path, e), key)
}

#[cfg(test)]
mod tests {
    use super::Key;

    #[test]
    fn keys_parse_from_hex_and_never_show() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
        let key = Key::from_hex(hex).unwrap();
        assert_eq!(key.to_hex().as_str(), hex.trim().to_lowercase());
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
        let short = Key::from_hex("abcd").unwrap_err();
        assert!(
            short.contains("64 hexadecimal characters") && !short.contains("abcd"),
            "{short}"
        );
        let not_hex = Key::from_hex(&"zz".repeat(32)).unwrap_err();
        assert!(!not_hex.contains("zz"), "{not_hex}");
        assert_ne!(Key::generate().unwrap().to_hex(), Key::generate().unwrap().to_hex());
        assert_eq!(key.check_value().len(), 32);
        assert!(!hex.to_lowercase().contains(&key.check_value()));
    }

    #[test]
    fn key_problems_have_their_words_and_are_never_retried() {
        use crate::ErrorKind;
        for (kind, word) in [
            (ErrorKind::KeyRejected, "key_rejected"),
            (ErrorKind::KeyRequired, "key_required"),
            (ErrorKind::NotEncrypted, "not_encrypted"),
            (ErrorKind::EncryptionUnavailable, "encryption_unavailable"),
        ] {
            assert_eq!(kind.as_str(), word);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{word}\""));
            assert!(!kind.is_retryable() && !kind.is_not_ready(), "{word}");
        }
    }
}
