//! Where the archive bytes go: a temporary file beside the destination or (feature `s3`) a
//! multipart upload, behind one buffered, counting writer.

use super::*;

/// Where the archive bytes go: a new local file, or (feature `s3`) a multipart upload.
pub(super) enum Dest {
    File(File),
    #[cfg(feature = "s3")]
    Bucket(super::super::s3::BucketSink),
}

/// The archive being written, buffered; in a local file runs of zeros become holes.
pub(super) struct Out {
    pub(super) dest: Dest,
    pub(super) path: PathBuf,
    pub(super) buf: Vec<u8>,
    pub(super) pos: u64,
}

impl Out {
    /// Streamed output cannot seek back: entries of several chunks get data descriptors.
    pub(super) fn streaming(&self) -> bool {
        !matches!(self.dest, Dest::File(_))
    }

    pub(super) fn put(&mut self, b: &[u8]) -> Result<()> {
        match &mut self.dest {
            Dest::File(f) => f.write_all(b).map_err(Error::io_at("write", &self.path)),
            #[cfg(feature = "s3")]
            Dest::Bucket(s) => s.write(b),
        }
    }

    pub(super) fn write(&mut self, b: &[u8]) -> Result<()> {
        if self.buf.len() + b.len() > OUT_BUF {
            self.flush()?;
        }
        if b.len() >= OUT_BUF {
            self.put(b)?;
        } else {
            self.buf.extend_from_slice(b);
        }
        self.pos += b.len() as u64;
        Ok(())
    }

    /// Stored data: a block of zeros becomes a hole (the file is new, holes read as zeros).
    // Without feature `s3` a file is the only destination.
    #[allow(irrefutable_let_patterns)]
    pub(super) fn write_data(&mut self, b: &[u8]) -> Result<()> {
        if let Dest::File(file) = &mut self.dest {
            if b.len() >= 64 << 10 && super::super::is_zero(b) {
                file.write_all(&self.buf)
                    .map_err(Error::io_at("write", &self.path))?;
                self.buf.clear();
                file.seek(SeekFrom::Current(b.len() as i64))
                    .map_err(Error::io_at("seek", &self.path))?;
                self.pos += b.len() as u64;
                return Ok(());
            }
        }
        self.write(b)
    }

    pub(super) fn flush(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let r = self.put(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    pub(super) fn patch(&mut self, at: u64, b: &[u8]) -> Result<()> {
        self.flush()?;
        let io = Error::io_at("write", &self.path);
        let pos = self.pos;
        match &mut self.dest {
            Dest::File(file) => (|| {
                file.seek(SeekFrom::Start(at))?;
                file.write_all(b)?;
                file.seek(SeekFrom::Start(pos)).map(|_| ())
            })()
            .map_err(io),
            #[cfg(feature = "s3")]
            Dest::Bucket(_) => Err(io(std::io::Error::other(
                "internal: cannot patch a streamed archive",
            ))),
        }
    }

    pub(super) fn finish(&mut self) -> Result<()> {
        self.flush()?;
        match &mut self.dest {
            Dest::File(file) => {
                file.set_len(self.pos)
                    .map_err(Error::io_at("write", &self.path))?;
                file.sync_all().map_err(Error::io_at("sync", &self.path))
            }
            #[cfg(feature = "s3")]
            Dest::Bucket(s) => s.finish(),
        }
    }
}

/// Removes the temporary archive unless disarmed.
pub(super) struct TempGuard(pub(super) Option<PathBuf>);
impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(&p);
        }
    }
}
