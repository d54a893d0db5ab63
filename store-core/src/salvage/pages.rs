//! Reading table leaf pages one by one, for the rows SQLite cannot reach: a damaged *interior* page hides
//! every leaf below it, though those leaves are intact. SQLite's recover extension (`ext/recover` in the
//! SQLite sources) reads such "orphan" pages itself; this does the small part of that which a salvage needs:
//! parse a page as a table b-tree leaf and decode its records
//! (<https://sqlite.org/fileformat2.html>: §1.3 the header, §1.5 free pages, §1.6 b-tree pages, §2.1 records).
//! Nothing here writes, and any byte out of place rejects the whole page rather than guess.
//!
//! A plaintext file is read with `std::fs` while the salvage's read-only SQLite connection to it is open.
//! Closing a descriptor drops the POSIX locks the process holds on the file (hazards: "The ownership lock");
//! this one is opened and closed only between statements, when that connection holds none, and the owner lock
//! the caller holds proves no other process writes the file. An encrypted file (ciphertext on disk) and one
//! whose WAL holds pages (newer than the file's copies) are read through SQLite's pager instead
//! (`sqlite_dbpage`, see [`RawFile::through`]), which reads the WAL and where SQLCipher decrypts.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rusqlite::types::Value;

/// Where a [`RawFile`]'s pages come from.
enum Source<'a> {
    /// The file itself.
    File(File),
    /// A function that returns page `n` as SQLite's pager reads it, or None when it cannot be read.
    Pager(Box<dyn Fn(u32) -> Option<Vec<u8>> + 'a>),
}

/// A page of a table b-tree, as [`RawFile::table_page`] reads it.
pub(super) enum TablePage {
    /// An interior page: the pages below it (the left child of each cell, then the right-most child).
    Interior(Vec<u32>),
    /// A leaf: its rows, (rowid, record values), in rowid order.
    Leaf(Vec<(i64, Vec<Value>)>),
}

/// A database file read page by page.
pub(super) struct RawFile<'a> {
    source: Source<'a>,
    page_size: usize,
    /// Page size less the reserved bytes at the end of each page.
    usable: usize,
    /// Pages in the file, the last one possibly cut short (a plaintext file that ends inside a page).
    pages: u32,
    /// The file's length in bytes.
    len: u64,
    /// Pages on the freelist (trunks and leaves): freed pages keep old rows, which must not come back.
    /// None when the freelist could not be walked.
    pub free: Option<HashSet<u32>>,
}

impl<'a> RawFile<'a> {
    /// Opens `path` and reads its header. `Err` says why its pages cannot be read directly.
    pub fn open(path: &Path) -> Result<RawFile<'static>, String> {
        let file = File::open(path).map_err(|e| format!("cannot be opened ({e})"))?;
        let mut header = [0u8; 100];
        file.read_exact_at(&mut header, 0)
            .map_err(|e| format!("its header cannot be read ({e})"))?;
        let len = file.metadata().map_err(|e| format!("cannot be read ({e})"))?.len();
        RawFile::with_header(&header, len, Source::File(file))
    }

    /// The file whose `page_count` pages `page` returns as SQLite's pager reads them (page 1 holding the
    /// header). `Err` says why they cannot be read one by one.
    pub fn through(page_count: u32, page: impl Fn(u32) -> Option<Vec<u8>> + 'a) -> Result<RawFile<'a>, String> {
        let first = page(1).ok_or("its first page cannot be read")?;
        let header = first.get(..100).ok_or("its first page is too short")?;
        let len = u64::from(page_count) * first.len() as u64;
        RawFile::with_header(header, len, Source::Pager(Box::new(page)))
    }

    /// A file of `header` (its first 100 bytes) and `len` bytes, read from `source`.
    fn with_header(header: &[u8], len: u64, source: Source<'a>) -> Result<RawFile<'a>, String> {
        if &header[..16] != crate::files::SQLITE_HEADER {
            return Err("its header is not SQLite's".into());
        }
        let page_size = page_size(header)?;
        let usable = page_size - usize::from(header[20]);
        if usable < 480 {
            return Err("its header gives an impossible reserved size".into());
        }
        if u32::from_be_bytes([header[56], header[57], header[58], header[59]]) > 1 {
            return Err("its text is UTF-16, which is not read page by page".into());
        }
        let pages = u32::try_from(len.div_ceil(page_size as u64)).unwrap_or(u32::MAX);
        let mut raw = RawFile {
            source,
            page_size,
            usable,
            pages,
            len,
            free: None,
        };
        let first_trunk = u32::from_be_bytes([header[32], header[33], header[34], header[35]]);
        raw.free = raw.freelist(first_trunk);
        Ok(raw)
    }

    /// Every page number in the file, 1-based.
    pub fn page_numbers(&self) -> std::ops::RangeInclusive<u32> {
        1..=self.pages
    }

    /// Page `n`, whole.
    fn page(&self, n: u32) -> Option<Vec<u8>> {
        self.page_or_cut(n)
            .filter(|(_, there)| *there == self.page_size)
            .map(|(page, _)| page)
    }

    /// Page `n` and how many of its bytes are in the file: fewer than a page for the last one of a file that
    /// ends inside it (the rest of the buffer is zeros, which are no part of the page).
    fn page_or_cut(&self, n: u32) -> Option<(Vec<u8>, usize)> {
        if n == 0 || n > self.pages {
            return None;
        }
        match &self.source {
            Source::File(file) => {
                let at = u64::from(n - 1) * self.page_size as u64;
                let there = usize::try_from(self.len - at).map_or(self.page_size, |b| b.min(self.page_size));
                let mut buf = vec![0u8; self.page_size];
                file.read_exact_at(&mut buf[..there], at).ok()?;
                Some((buf, there))
            }
            Source::Pager(page) => page(n)
                .filter(|p| p.len() == self.page_size)
                .map(|p| (p, self.page_size)),
        }
    }

    /// The pages of the freelist: trunk pages list leaf pages and point at the next trunk (§1.5).
    fn freelist(&self, first_trunk: u32) -> Option<HashSet<u32>> {
        let mut free = HashSet::new();
        let mut trunk = first_trunk;
        while trunk != 0 {
            // A cycle or a page past the end is damage: the freelist is then unknown.
            if !free.insert(trunk) {
                return None;
            }
            let page = self.page(trunk)?;
            let next = be32(&page, 0)?;
            let count = be32(&page, 4)? as usize;
            if count > (self.usable - 8) / 4 {
                return None;
            }
            for i in 0..count {
                free.insert(be32(&page, 8 + 4 * i)?);
            }
            trunk = next;
        }
        Some(free)
    }

    /// Page `n` if it is a page of a table b-tree (§1.6) that parses whole: an interior page (type 0x05)
    /// with the pages below it, or a leaf (type 0x0D) whose every cell decodes, with its rows (rowid, record
    /// values), rowids strictly increasing. None for any other page, or any doubt. Page 1 is parsed past the
    /// file header, as the root of `sqlite_schema` (§1.3). A leaf cut short by the end of the file gives the
    /// rows whose cells lie whole before the cut (the rest are not in the file), if any; an interior page cut
    /// short gives nothing.
    pub fn table_page(&self, n: u32) -> Option<TablePage> {
        let (page, there) = self.page_or_cut(n)?;
        let hdr = if n == 1 { 100 } else { 0 };
        let kind = *page.get(hdr)?;
        if kind != 0x05 && kind != 0x0D {
            return None;
        }
        let cells = usize::from(be16(&page, hdr + 3)?);
        // An interior page's header is 12 bytes (it ends with the right-most pointer), a leaf's 8.
        let header_len = if kind == 0x05 { 12 } else { 8 };
        let pointers_end = hdr + header_len + 2 * cells;
        if there < self.page_size && (kind == 0x05 || pointers_end > there) {
            return None;
        }
        let cell_at = |i: usize| {
            let at = usize::from(be16(&page, hdr + header_len + 2 * i)?);
            (at >= pointers_end && at < self.usable).then_some(at)
        };
        if kind == 0x05 {
            // Each cell: a 4-byte page number (the left child), then a varint key; the right-most child is
            // in the header. A child 0 is damage (pages are numbered from 1).
            let mut below = Vec::with_capacity(cells + 1);
            for i in 0..cells {
                below.push(be32(&page, cell_at(i)?)?);
            }
            below.push(be32(&page, hdr + 8)?);
            return below.iter().all(|&c| c != 0).then_some(TablePage::Interior(below));
        }
        if cells == 0 {
            return None;
        }
        let mut rows: Vec<(i64, Vec<Value>)> = Vec::with_capacity(cells);
        for i in 0..cells {
            let at = cell_at(i)?;
            if at >= there {
                continue;
            }
            let (size, a) = varint(&page[..self.usable], at)?;
            let (rowid, b) = varint(&page[..self.usable], a)?;
            let rowid = rowid as i64;
            if b + self.local(size).1 > there {
                continue;
            }
            if rows.last().is_some_and(|r| r.0 >= rowid) {
                return None;
            }
            let payload = self.payload(&page, b, size)?;
            rows.push((rowid, record(&payload)?));
        }
        (!rows.is_empty()).then_some(TablePage::Leaf(rows))
    }

    /// How many bytes of a payload of `size` bytes stay on a table leaf page, the rest being on overflow
    /// pages (§1.6), and how many bytes of the page the cell's payload takes (with the first overflow page's
    /// number).
    fn local(&self, size: u64) -> (usize, usize) {
        let u = self.usable as u64;
        let x = u - 35;
        let local = if size <= x {
            size
        } else {
            let m = ((u - 12) * 32 / 255) - 23;
            let k = m + ((size - m) % (u - 4));
            if k <= x { k } else { m }
        } as usize;
        (local, if size > local as u64 { local + 4 } else { local })
    }

    /// A cell's payload of `size` bytes starting at `at`: the part on the page, then its overflow pages.
    fn payload(&self, page: &[u8], at: usize, size: u64) -> Option<Vec<u8>> {
        let (local, _) = self.local(size);
        let size = usize::try_from(size).ok()?;
        let mut out = page.get(at..at + local)?.to_vec();
        if at + local > self.usable {
            return None;
        }
        if size > local {
            let mut next = be32(page, at + local)?;
            let mut hops = 0u32;
            while out.len() < size {
                hops += 1;
                if next == 0 || hops > self.pages {
                    return None;
                }
                let overflow = self.page(next)?;
                let take = (size - out.len()).min(self.usable - 4);
                out.extend_from_slice(overflow.get(4..4 + take)?);
                next = be32(&overflow, 0)?;
            }
        }
        Some(out)
    }
}

/// The page size a file's header (its first 100 bytes) gives (§1.3.2).
fn page_size(header: &[u8]) -> Result<usize, String> {
    match u16::from_be_bytes([header[16], header[17]]) {
        1 => Ok(65_536),
        n if n >= 512 && n.is_power_of_two() => Ok(usize::from(n)),
        n => Err(format!("its header gives an impossible page size ({n})")),
    }
}

/// When the plaintext database at `path` ends inside a page (a copy cut short): its length and page size.
/// SQLite reads the missing end of that page as zeros, with no error (`open_database::refuse_cut_mid_page`).
pub(super) fn ends_inside_a_page(path: &Path) -> Option<(u64, u64)> {
    let file = File::open(path).ok()?;
    let mut header = [0u8; 100];
    file.read_exact_at(&mut header, 0).ok()?;
    if &header[..16] != crate::files::SQLITE_HEADER {
        return None;
    }
    let page_size = page_size(&header).ok()? as u64;
    let len = file.metadata().ok()?.len();
    (len % page_size != 0).then_some((len, page_size))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// SQLite's variable-length integer: 1 to 9 bytes, big-endian, 7 bits a byte, the 9th byte whole (§1.6).
fn varint(b: &[u8], at: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at + i)?;
        if i == 8 {
            return Some(((v << 8) | u64::from(byte), at + 9));
        }
        v = (v << 7) | u64::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            return Some((v, at + i + 1));
        }
    }
    None
}

/// A record: a header of serial types, then the values (§2.1). Text is taken as UTF-8 (the file's encoding
/// was checked), with bad bytes replaced.
fn record(p: &[u8]) -> Option<Vec<Value>> {
    let (header_size, mut at) = varint(p, 0)?;
    let header_size = usize::try_from(header_size).ok()?;
    if header_size > p.len() || header_size < at {
        return None;
    }
    let mut types = Vec::new();
    while at < header_size {
        let (t, next) = varint(p, at)?;
        types.push(t);
        at = next;
    }
    if at != header_size {
        return None;
    }
    let mut body = header_size;
    let mut values = Vec::with_capacity(types.len());
    for t in types {
        let int = |len: usize| -> Option<i64> {
            let bytes = p.get(body..body + len)?;
            let mut v: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for byte in bytes {
                v = (v << 8) | i64::from(*byte);
            }
            Some(v)
        };
        let (value, len) = match t {
            0 => (Value::Null, 0),
            1 => (Value::Integer(int(1)?), 1),
            2 => (Value::Integer(int(2)?), 2),
            3 => (Value::Integer(int(3)?), 3),
            4 => (Value::Integer(int(4)?), 4),
            5 => (Value::Integer(int(6)?), 6),
            6 => (Value::Integer(int(8)?), 8),
            7 => {
                let bits = u64::from_be_bytes(p.get(body..body + 8)?.try_into().ok()?);
                (Value::Real(f64::from_bits(bits)), 8)
            }
            8 => (Value::Integer(0), 0),
            9 => (Value::Integer(1), 0),
            10 | 11 => return None,
            n => {
                let len = usize::try_from((n - 12) / 2).ok()?;
                let bytes = p.get(body..body.checked_add(len)?)?;
                if n % 2 == 0 {
                    (Value::Blob(bytes.to_vec()), len)
                } else {
                    (Value::Text(String::from_utf8_lossy(bytes).into_owned()), len)
                }
            }
        };
        values.push(value);
        body += len;
    }
    (body == p.len()).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_records_decode_as_sqlite_writes_them() {
        assert_eq!(varint(&[0x05], 0), Some((5, 1)));
        assert_eq!(varint(&[0x81, 0x00], 0), Some((128, 2)));
        assert_eq!(varint(&[0xFF; 9], 0), Some((u64::MAX, 9)));
        assert_eq!(varint(&[0x81], 0), None);
        // header size 4; NULL, int8 -2, text "hi"
        let rec = [4u8, 0, 1, 17, 0xFE, b'h', b'i'];
        assert_eq!(
            record(&rec),
            Some(vec![Value::Null, Value::Integer(-2), Value::Text("hi".into())])
        );
        assert_eq!(record(&rec[..6]), None, "a short body is refused");
        assert_eq!(record(&[2u8, 10]), None, "reserved serial types are refused");
    }
}
