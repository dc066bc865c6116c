//! Where archives are read from: a local file (`pread`) or, with feature `s3`, an object in
//! an S3-compatible bucket (ranged GETs through a read-ahead block cache).

use std::fs::File;
use std::io;
use std::path::Path;

use super::format::read_exact_at;
use super::open_error;
use crate::error::Result;

/// Random access to an archive's bytes, shared by several reading threads.
pub(crate) trait Source: Sync {
    /// Total size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Read exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl Source for File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        read_exact_at(self, buf, offset)
    }
}

/// Open the archive at `path`: a local file, or a bucket object for an `s3://` URL.
pub(crate) fn open(path: &Path) -> Result<Box<dyn Source>> {
    match super::ArchiveTarget::parse(path)? {
        super::ArchiveTarget::Bucket(url) => open_bucket(&url),
        super::ArchiveTarget::Local(p) => {
            let file = File::open(&p).map_err(|e| open_error(&p, e))?;
            Ok(Box::new(file))
        }
    }
}

#[cfg(feature = "s3")]
fn open_bucket(url: &str) -> Result<Box<dyn Source>> {
    Ok(Box::new(super::s3::BucketSource::open(url)?))
}

#[cfg(not(feature = "s3"))]
fn open_bucket(url: &str) -> Result<Box<dyn Source>> {
    Err(super::target::no_s3(url))
}
