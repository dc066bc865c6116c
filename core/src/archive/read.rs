//! Streaming one entry's bytes out of an archive, checking its CRC and size as it goes.

use std::io::{self, Read};
use std::path::Path;

use super::format::{CdEntry, ZipIndex, METHOD_DEFLATED, METHOD_STORED};
use super::source::Source;
use crate::error::{Error, Result};

/// Reads a byte range of a file through `pread`, so several threads share one archive.
struct RangeReader<'a> {
    file: &'a dyn Source,
    pos: u64,
    end: u64,
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.end - self.pos).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.file.read_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

const BUF: usize = 256 << 10;

/// Stream the decoded bytes of `entry` to `sink` in blocks, checking that the data decodes,
/// has exactly the recorded size and the recorded CRC-32. Returns the byte count.
pub(crate) fn read_entry(
    path: &Path,
    file: &dyn Source,
    index: &ZipIndex,
    entry: &CdEntry,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let bad = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        entry: Some(entry.name.clone()),
        reason,
    };
    if entry.flags & super::format::FLAG_ENCRYPTED != 0 {
        return Err(Error::Unsupported {
            what: format!("encrypted entry {:?}", entry.name),
        });
    }
    let start = index.data_start(path, file, entry)?;
    let raw = RangeReader {
        file,
        pos: start,
        end: start + entry.compressed,
    };
    let mut reader: Box<dyn Read + '_> = match entry.method {
        METHOD_STORED => Box::new(raw),
        METHOD_DEFLATED => Box::new(flate2::bufread::DeflateDecoder::new(
            io::BufReader::with_capacity(BUF, raw),
        )),
        m => {
            return Err(Error::Unsupported {
                what: format!(
                    "compression method {m} of entry {:?} (only stored and deflated)",
                    entry.name
                ),
            })
        }
    };
    let mut buf = vec![0u8; BUF];
    let mut crc = crc32fast::Hasher::new();
    let mut total = 0u64;
    loop {
        // Ask for at most one byte beyond the recorded size: an entry never yields more.
        let want = (entry.uncompressed - total)
            .saturating_add(1)
            .min(buf.len() as u64) as usize;
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::InvalidInput
                    || e.kind() == io::ErrorKind::InvalidData =>
            {
                return Err(bad(format!("compressed data does not decode: {e}")))
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(bad("compressed data ends early: truncated".into()))
            }
            Err(e) => return Err(Error::io("read", path, e)),
        };
        total += n as u64;
        if total > entry.uncompressed {
            // Never decode past the recorded size: this is what defuses a lying zip bomb.
            return Err(bad(format!(
                "decodes to more than its recorded {} bytes",
                entry.uncompressed
            )));
        }
        crc.update(&buf[..n]);
        sink(&buf[..n])?;
    }
    if total != entry.uncompressed {
        return Err(bad(format!(
            "decodes to {total} bytes, {} recorded",
            entry.uncompressed
        )));
    }
    let got = crc.finalize();
    if got != entry.crc {
        return Err(bad(format!(
            "CRC-32 mismatch: data has {got:08x}, header says {:08x}",
            entry.crc
        )));
    }
    Ok(total)
}
