//! The zip container at byte level: headers written by the archiver and the central directory
//! read by `verify`, `list` and `restore`.
//!
//! Written archives follow the Info-ZIP conventions every tool reads: sizes and CRC in the local
//! header (no data descriptors) for local files; an archive streamed to a bucket cannot seek
//! back, so there an entry of several chunks has flag bit 3 and a data descriptor (ZIP64-sized
//! when its local header carries the ZIP64 extra) after its data. ZIP64 extra fields only on entries that need them (an entry of
//! 4 GiB or more, an offset beyond 4 GiB) and the ZIP64 end records only when the archive
//! needs them (more than 65,535 entries, a central directory beyond 4 GiB).

use std::fs::File;
use std::io;
use std::path::Path;

use super::source::Source;
use crate::error::{Error, Result};

pub(crate) const LOCAL_SIG: u32 = 0x0403_4b50;
pub(crate) const CENTRAL_SIG: u32 = 0x0201_4b50;
pub(crate) const EOCD_SIG: u32 = 0x0605_4b50;
pub(crate) const EOCD64_SIG: u32 = 0x0606_4b50;
pub(crate) const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
pub(crate) const DESCRIPTOR_SIG: u32 = 0x0807_4b50;
/// General purpose flag: CRC and sizes follow the data in a data descriptor.
pub(crate) const FLAG_DESCRIPTOR: u16 = 0x0008;
pub(crate) const ZIP64_EXTRA: u16 = 0x0001;

/// Compression method numbers.
pub(crate) const METHOD_STORED: u16 = 0;
pub(crate) const METHOD_DEFLATED: u16 = 8;

/// General purpose flag: names are UTF-8.
pub(crate) const FLAG_UTF8: u16 = 0x0800;
/// General purpose flag: the entry is encrypted.
pub(crate) const FLAG_ENCRYPTED: u16 = 0x0001;

/// "Version made by": Unix (3), spec 4.5.
const MADE_BY: u16 = (3 << 8) | 45;
const U32_MAX: u64 = 0xFFFF_FFFF;

/// Entries at least this large carry a ZIP64 extra in their local header: deflate of
/// incompressible data grows slightly, so the margin keeps the compressed size safe too.
pub(crate) const ZIP64_THRESHOLD: u64 = 0xF000_0000;

/// Unix file type bits, as stored in the high half of the external attributes.
pub(crate) const S_IFMT: u32 = 0o170000;
pub(crate) const S_IFREG: u32 = 0o100000;
pub(crate) const S_IFDIR: u32 = 0o040000;
pub(crate) const S_IFLNK: u32 = 0o120000;

/// The kind of a zip entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory (name ends with `/`).
    Dir,
    /// A symbolic link; the entry's data is the link target.
    Symlink,
}

/// What the writer knows about one entry when it writes its headers.
#[derive(Debug, Clone)]
pub(crate) struct HeaderInfo {
    pub name: String,
    pub method: u16,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    pub offset: u64,
    pub unix_mode: u32,
    pub dos_time: u16,
    pub dos_date: u16,
    /// Whether the local header carries a ZIP64 extra (decided before the data is written).
    pub zip64_local: bool,
    /// CRC and sizes follow the data in a data descriptor (streamed output).
    pub descriptor: bool,
}

impl HeaderInfo {
    fn flags(&self) -> u16 {
        let utf8 = if self.name.is_ascii() { 0 } else { FLAG_UTF8 };
        if self.descriptor {
            utf8 | FLAG_DESCRIPTOR
        } else {
            utf8
        }
    }

    /// The data descriptor written after the data of a `descriptor` entry.
    pub fn data_descriptor(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(24);
        put32(&mut b, DESCRIPTOR_SIG);
        put32(&mut b, self.crc);
        if self.zip64_local {
            put64(&mut b, self.compressed);
            put64(&mut b, self.uncompressed);
        } else {
            put32(&mut b, self.compressed as u32);
            put32(&mut b, self.uncompressed as u32);
        }
        b
    }

    fn version_needed(&self, zip64: bool) -> u16 {
        if zip64 {
            45
        } else {
            20
        }
    }

    /// The local file header. With `zip64_local`, both sizes live in the ZIP64 extra.
    pub fn local_header(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(30 + self.name.len() + 20);
        put32(&mut b, LOCAL_SIG);
        put16(&mut b, self.version_needed(self.zip64_local));
        put16(&mut b, self.flags());
        put16(&mut b, self.method);
        put16(&mut b, self.dos_time);
        put16(&mut b, self.dos_date);
        // With a data descriptor the CRC and sizes are not known yet: zero here.
        let known = !self.descriptor;
        put32(&mut b, if known { self.crc } else { 0 });
        if self.zip64_local {
            put32(&mut b, U32_MAX as u32);
            put32(&mut b, U32_MAX as u32);
        } else {
            put32(&mut b, if known { self.compressed as u32 } else { 0 });
            put32(&mut b, if known { self.uncompressed as u32 } else { 0 });
        }
        put16(&mut b, self.name.len() as u16);
        put16(&mut b, if self.zip64_local { 20 } else { 0 });
        b.extend_from_slice(self.name.as_bytes());
        if self.zip64_local {
            put16(&mut b, ZIP64_EXTRA);
            put16(&mut b, 16);
            put64(&mut b, if known { self.uncompressed } else { 0 });
            put64(&mut b, if known { self.compressed } else { 0 });
        }
        b
    }

    /// The central directory header; ZIP64 fields only for values that need them (and both
    /// sizes whenever the local header used ZIP64, so the two records agree).
    pub fn central_header(&self, out: &mut Vec<u8>) {
        let sizes64 =
            self.zip64_local || self.uncompressed >= U32_MAX || self.compressed >= U32_MAX;
        let offset64 = self.offset >= U32_MAX;
        let mut extra = Vec::new();
        if sizes64 {
            put64(&mut extra, self.uncompressed);
            put64(&mut extra, self.compressed);
        }
        if offset64 {
            put64(&mut extra, self.offset);
        }
        let zip64 = sizes64 || offset64;
        put32(out, CENTRAL_SIG);
        put16(out, MADE_BY);
        put16(out, self.version_needed(zip64));
        put16(out, self.flags());
        put16(out, self.method);
        put16(out, self.dos_time);
        put16(out, self.dos_date);
        put32(out, self.crc);
        put32(
            out,
            if sizes64 {
                U32_MAX as u32
            } else {
                self.compressed as u32
            },
        );
        put32(
            out,
            if sizes64 {
                U32_MAX as u32
            } else {
                self.uncompressed as u32
            },
        );
        put16(out, self.name.len() as u16);
        put16(out, if zip64 { 4 + extra.len() as u16 } else { 0 });
        put16(out, 0); // comment
        put16(out, 0); // disk
        put16(out, 0); // internal attributes
        let mut external = self.unix_mode << 16;
        if self.unix_mode & S_IFMT == S_IFDIR {
            external |= 0x10; // MS-DOS directory bit
        }
        put32(out, external);
        put32(
            out,
            if offset64 {
                U32_MAX as u32
            } else {
                self.offset as u32
            },
        );
        out.extend_from_slice(self.name.as_bytes());
        if zip64 {
            put16(out, ZIP64_EXTRA);
            put16(out, extra.len() as u16);
            out.extend_from_slice(&extra);
        }
    }
}

/// The end records: ZIP64 ones only when the entry count or an offset needs them.
pub(crate) fn end_records(entries: u64, cd_offset: u64, cd_size: u64) -> Vec<u8> {
    let mut b = Vec::new();
    let zip64 = entries >= 0xFFFF || cd_offset >= U32_MAX || cd_size >= U32_MAX;
    if zip64 {
        let eocd64_offset = cd_offset + cd_size;
        put32(&mut b, EOCD64_SIG);
        put64(&mut b, 44);
        put16(&mut b, MADE_BY);
        put16(&mut b, 45);
        put32(&mut b, 0);
        put32(&mut b, 0);
        put64(&mut b, entries);
        put64(&mut b, entries);
        put64(&mut b, cd_size);
        put64(&mut b, cd_offset);
        put32(&mut b, EOCD64_LOCATOR_SIG);
        put32(&mut b, 0);
        put64(&mut b, eocd64_offset);
        put32(&mut b, 1);
    }
    put32(&mut b, EOCD_SIG);
    put16(&mut b, 0);
    put16(&mut b, 0);
    let n16 = if entries >= 0xFFFF {
        0xFFFF
    } else {
        entries as u16
    };
    put16(&mut b, n16);
    put16(&mut b, n16);
    put32(&mut b, cd_size.min(U32_MAX) as u32);
    put32(&mut b, cd_offset.min(U32_MAX) as u32);
    put16(&mut b, 0);
    b
}

/// MS-DOS date and time of a modification time, in local time (what `unzip -l` shows).
pub(crate) fn dos_datetime(mtime: std::time::SystemTime) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    let t: chrono::DateTime<chrono::Local> = mtime.into();
    if t.year() < 1980 {
        return (0, (1 << 5) | 1);
    }
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    let date =
        (((t.year() - 1980).min(127) as u16) << 9) | ((t.month() as u16) << 5) | (t.day() as u16);
    (time, date)
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// One entry of the central directory, as read back.
#[derive(Debug, Clone)]
pub(crate) struct CdEntry {
    /// Position in the central directory.
    pub index: usize,
    /// The raw name (UTF-8 when it decodes; otherwise kept lossy and flagged).
    pub name: String,
    pub name_is_utf8: bool,
    pub flags: u16,
    pub method: u16,
    pub crc: u32,
    pub compressed: u64,
    pub uncompressed: u64,
    pub offset: u64,
    pub made_by_unix: bool,
    pub external: u32,
}

impl CdEntry {
    /// Unix mode bits, when the archive recorded them.
    pub fn unix_mode(&self) -> Option<u32> {
        let mode = self.external >> 16;
        (self.made_by_unix && mode != 0).then_some(mode)
    }

    /// File, directory or symlink.
    pub fn kind(&self) -> EntryKind {
        if let Some(mode) = self.unix_mode() {
            match mode & S_IFMT {
                S_IFDIR => return EntryKind::Dir,
                S_IFLNK => return EntryKind::Symlink,
                _ => {}
            }
        }
        if self.name.ends_with('/') || (!self.made_by_unix && self.external & 0x10 != 0) {
            EntryKind::Dir
        } else {
            EntryKind::File
        }
    }
}

/// The parsed central directory of an archive.
#[derive(Debug)]
pub(crate) struct ZipIndex {
    pub len: u64,
    pub entries: Vec<CdEntry>,
    /// Where the central directory starts: entry data must end before it.
    pub cd_offset: u64,
}

/// The central directory may not be larger than this (about 5 million entries).
const MAX_CD_SIZE: u64 = 512 << 20;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Read exactly `buf.len()` bytes at `offset` without moving a shared cursor.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

impl ZipIndex {
    /// Parse the end records and the central directory of `path`.
    pub fn open(path: &Path, file: &dyn Source) -> Result<ZipIndex> {
        let len = file.size().map_err(Error::io_at("stat", path))?;
        let corrupt = |reason: String| Error::corrupt(path, reason);
        if len < 22 {
            return Err(corrupt(format!(
                "only {len} bytes: truncated or not a zip archive"
            )));
        }
        let tail_len = len.min(22 + 65535 + 20 + 56);
        let mut tail = vec![0u8; tail_len as usize];
        file.read_at(&mut tail, len - tail_len)
            .map_err(Error::io_at("read", path))?;
        let eocd = (0..=tail.len() - 22)
            .rev()
            .find(|&i| {
                le32(&tail, i) == EOCD_SIG && i + 22 + le16(&tail, i + 20) as usize <= tail.len()
            })
            .ok_or_else(|| {
                corrupt(
                    "no end of central directory record: the archive is truncated or not a zip"
                        .into(),
                )
            })?;
        let eocd_pos = len - tail_len + eocd as u64;
        let mut count = le16(&tail, eocd + 10) as u64;
        let mut cd_size = le32(&tail, eocd + 12) as u64;
        let mut cd_offset = le32(&tail, eocd + 16) as u64;
        if eocd >= 20 && le32(&tail, eocd - 20) == EOCD64_LOCATOR_SIG {
            let at = le64(&tail, eocd - 20 + 8);
            let mut rec = [0u8; 56];
            if at.saturating_add(56) > eocd_pos {
                return Err(corrupt("ZIP64 end record out of range: truncated".into()));
            }
            file.read_at(&mut rec, at)
                .map_err(Error::io_at("read", path))?;
            if le32(&rec, 0) != EOCD64_SIG {
                return Err(corrupt(
                    "bad ZIP64 end of central directory record: truncated or damaged".into(),
                ));
            }
            count = le64(&rec, 32);
            cd_size = le64(&rec, 40);
            cd_offset = le64(&rec, 48);
        }
        if cd_size > MAX_CD_SIZE {
            return Err(Error::Unsupported {
                what: format!("central directory of {cd_size} bytes"),
            });
        }
        if cd_offset
            .checked_add(cd_size)
            .is_none_or(|end| end > eocd_pos)
        {
            return Err(corrupt(format!(
                "central directory ({cd_size} bytes at {cd_offset}) lies beyond the end of the \
                 archive ({len} bytes): truncated"
            )));
        }
        let mut cd = vec![0u8; cd_size as usize];
        file.read_at(&mut cd, cd_offset)
            .map_err(Error::io_at("read", path))?;
        let mut entries = Vec::with_capacity(count.min(1 << 20) as usize);
        let mut at = 0usize;
        while at + 46 <= cd.len() {
            if le32(&cd, at) != CENTRAL_SIG {
                return Err(corrupt(format!(
                    "bad central directory header #{}",
                    entries.len()
                )));
            }
            let made_by = le16(&cd, at + 4);
            let flags = le16(&cd, at + 8);
            let method = le16(&cd, at + 10);
            let crc = le32(&cd, at + 16);
            let mut compressed = le32(&cd, at + 20) as u64;
            let mut uncompressed = le32(&cd, at + 24) as u64;
            let n = le16(&cd, at + 28) as usize;
            let m = le16(&cd, at + 30) as usize;
            let k = le16(&cd, at + 32) as usize;
            let external = le32(&cd, at + 38);
            let mut offset = le32(&cd, at + 42) as u64;
            let end = at + 46 + n + m + k;
            if end > cd.len() {
                return Err(corrupt(format!(
                    "central directory header #{} runs past the directory",
                    entries.len()
                )));
            }
            let raw_name = &cd[at + 46..at + 46 + n];
            let (name, name_is_utf8) = match std::str::from_utf8(raw_name) {
                Ok(s) => (s.to_string(), true),
                Err(_) => (String::from_utf8_lossy(raw_name).into_owned(), false),
            };
            // ZIP64 extra: the fields present are those whose 32-bit value is saturated.
            let mut extra = &cd[at + 46 + n..at + 46 + n + m];
            while extra.len() >= 4 {
                let id = le16(extra, 0);
                let size = le16(extra, 2) as usize;
                if 4 + size > extra.len() {
                    break;
                }
                if id == ZIP64_EXTRA {
                    let body = &extra[4..4 + size];
                    let mut p = 0;
                    let mut take = |v: &mut u64| {
                        if *v == U32_MAX && p + 8 <= body.len() {
                            *v = le64(body, p);
                            p += 8;
                        }
                    };
                    take(&mut uncompressed);
                    take(&mut compressed);
                    take(&mut offset);
                }
                extra = &extra[4 + size..];
            }
            entries.push(CdEntry {
                index: entries.len(),
                name,
                name_is_utf8,
                flags,
                method,
                crc,
                compressed,
                uncompressed,
                offset,
                made_by_unix: made_by >> 8 == 3,
                external,
            });
            at = end;
        }
        if entries.len() as u64 != count {
            return Err(corrupt(format!(
                "the end record announces {count} entries, the central directory holds {}",
                entries.len()
            )));
        }
        Ok(ZipIndex {
            len,
            entries,
            cd_offset,
        })
    }

    /// Where the data of `entry` starts, after checking its local header.
    pub fn data_start(&self, path: &Path, file: &dyn Source, entry: &CdEntry) -> Result<u64> {
        let bad = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            entry: Some(entry.name.clone()),
            reason,
        };
        let n = entry.name.len().min(0xFFFF);
        let mut h = vec![0u8; 30 + n];
        if entry.offset.saturating_add(h.len() as u64) > self.cd_offset {
            return Err(bad("local header lies beyond the entry data area".into()));
        }
        file.read_at(&mut h, entry.offset)
            .map_err(Error::io_at("read", path))?;
        if le32(&h, 0) != LOCAL_SIG {
            return Err(bad("bad local header signature".into()));
        }
        if le16(&h, 26) as usize != n || String::from_utf8_lossy(&h[30..]) != entry.name {
            return Err(bad("the local header names a different entry".into()));
        }
        if le16(&h, 8) != entry.method {
            return Err(bad(
                "local and central headers disagree on the method".into()
            ));
        }
        // Without a data descriptor (flag bit 3) the local header repeats CRC and sizes.
        if le16(&h, 6) & 0x08 == 0 {
            let (crc, cs, us) = (le32(&h, 14), le32(&h, 18) as u64, le32(&h, 22) as u64);
            let size_ok = |local: u64, central: u64| local == U32_MAX || local == central;
            if crc != entry.crc
                || !size_ok(cs, entry.compressed)
                || !size_ok(us, entry.uncompressed)
            {
                return Err(bad(
                    "local and central headers disagree on CRC or sizes".into()
                ));
            }
        }
        let start = entry.offset + h.len() as u64 + le16(&h, 28) as u64;
        if start
            .checked_add(entry.compressed)
            .is_none_or(|end| end > self.cd_offset)
        {
            return Err(bad(format!(
                "{} bytes of data run past the central directory: truncated",
                entry.compressed
            )));
        }
        Ok(start)
    }
}
