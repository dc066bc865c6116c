//! Private override values sealed at rest.
//!
//! A state store keeps the value of every [`Visibility::Private`](super::Visibility) override
//! sealed with XChaCha20-Poly1305 (the RustCrypto `chacha20poly1305` crate): a fresh random
//! 24-byte nonce per value, the override's key bound in as associated data, stored as
//! `capsa-sealed:v1:<hex of nonce || ciphertext+tag>`. A dump of the database (`sqlite3 FILE
//! .dump`, `pg_dump`, a backup) holds no private value; keys, scopes and visibilities stay
//! readable.
//!
//! The key is 32 random bytes in a key file ([`SealKey::open_or_create`]):
//!
//! - SQLite: beside the state file, the state file's name with the extension `.key`
//!   ([`SealKey::default_path`]: `<store>/.capsa/staging.db` → `<store>/.capsa/staging.key`).
//! - PostgreSQL (shared by hosts): no default; the path is given
//!   (`PostgresOptions::key_file`), and every host must use a copy of the same file.
//! - [`KEY_FILE_ENV`] (`CAPSA_STAGING_KEY_FILE`) overrides the path for both backends when the
//!   store is opened with [`open_store`](super::open_store).
//!
//! A missing key file is created with mode 0600 (written to a temporary file, then linked into
//! place, so two processes racing to create it both end with the one that won). A key file of
//! another size or that is not a regular file is refused; a wider mode is tightened to 0600
//! when this user owns the file. A value sealed with another key does not open: the error
//! names the key file, and no value is ever guessed.

use std::fmt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::error::{Error, Result};
use crate::safe_file::{self, Links};

/// The environment variable naming the key file; it overrides the default path (SQLite) or
/// supplies the missing one (PostgreSQL) in [`open_store`](super::open_store).
pub const KEY_FILE_ENV: &str = "CAPSA_STAGING_KEY_FILE";

/// The size of a key file: exactly this many random bytes.
pub const KEY_LEN: usize = 32;

/// The prefix of a sealed value as stored; `v1` is XChaCha20-Poly1305 with the override key as
/// associated data.
pub const SEALED_PREFIX: &str = "capsa-sealed:v1:";

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The key that seals and opens private values, with the file it was read from.
///
/// `Debug` shows the path only, never the key.
#[derive(Clone)]
pub struct SealKey {
    cipher: XChaCha20Poly1305,
    path: PathBuf,
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealKey").field("path", &self.path).finish()
    }
}

/// Whether a stored value is in the sealed form (starts with [`SEALED_PREFIX`]).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

impl SealKey {
    /// The default key file of the SQLite state file `state`: the same name with the extension
    /// `.key` (`staging.db` → `staging.key`; a state file that is itself named `*.key` gets
    /// `*.key.key`).
    pub fn default_path(state: &Path) -> PathBuf {
        let p = state.with_extension("key");
        if p == state {
            let mut s = state.as_os_str().to_owned();
            s.push(".key");
            return PathBuf::from(s);
        }
        p
    }

    /// Read the key file at `path`, creating it (mode 0600, [`KEY_LEN`] random bytes) when it
    /// does not exist. Its directory must exist.
    ///
    /// Errors: `InvalidArgument` (the file does not hold exactly [`KEY_LEN`] bytes),
    /// `UnsafePath` (not a regular file), `Io`.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<SealKey> {
        let path = path.as_ref();
        match SealKey::read(path) {
            Err(Error::NotFound { .. }) => {}
            other => return other,
        }
        create_key_file(path)?;
        SealKey::read(path)
    }

    /// A key that lives in memory only, for a state that does not outlive the process (an
    /// in-memory SQLite store).
    pub fn ephemeral() -> SealKey {
        SealKey {
            cipher: XChaCha20Poly1305::new(&XChaCha20Poly1305::generate_key(&mut OsRng)),
            path: PathBuf::from("<in-memory key>"),
        }
    }

    /// The key file this key was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(path: &Path) -> Result<SealKey> {
        let bytes =
            safe_file::read_small(path, Links::Follow, safe_file::limits::KEY_FILE, "key file")?;
        if bytes.len() != KEY_LEN {
            return Err(Error::InvalidArgument {
                what: "key file",
                reason: format!(
                    "{}: holds {} bytes; a key file holds exactly {KEY_LEN} random bytes",
                    path.display(),
                    bytes.len()
                ),
            });
        }
        tighten(path);
        Ok(SealKey {
            cipher: XChaCha20Poly1305::new_from_slice(&bytes).expect("32-byte key"),
            path: path.to_path_buf(),
        })
    }

    /// Seal `clear`, the value of the override named `key`, into its stored form.
    pub fn seal(&self, key: &str, clear: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: key.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption of a value in memory");
        let mut out = String::with_capacity(SEALED_PREFIX.len() + 2 * (NONCE_LEN + sealed.len()));
        out.push_str(SEALED_PREFIX);
        hex_into(&mut out, &nonce);
        hex_into(&mut out, &sealed);
        out
    }

    /// Open a value stored by [`SealKey::seal`] for the override named `key`.
    ///
    /// Errors: `InvalidArgument` naming the key file when the value was sealed with another key
    /// (or for another override, or is damaged).
    pub fn open(&self, key: &str, stored: &str) -> Result<String> {
        let refused = |why: &str| Error::InvalidArgument {
            what: "key file",
            reason: format!(
                "{}: cannot open the sealed value of override {key:?}: {why}",
                self.path.display()
            ),
        };
        let hex = stored
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| refused("not in the sealed form"))?;
        let bytes = unhex(hex).ok_or_else(|| refused("damaged (not hexadecimal)"))?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(refused("damaged (too short)"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let clear = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                },
            )
            .map_err(|_| {
                refused(&format!(
                    "it was sealed with another key (give the key file the state was written \
                     with: --key-file or {KEY_FILE_ENV}), or it is damaged"
                ))
            })?;
        String::from_utf8(clear).map_err(|_| refused("damaged (not UTF-8)"))
    }
}

/// Create the key file atomically: random bytes into a private temporary file beside it, then
/// a hard link into place (which fails if another process got there first: its key is kept).
fn create_key_file(path: &Path) -> Result<()> {
    use std::io::Write;
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // capsa's temporary name: a process killed before the link leaves one fsck removes.
    let tmp = crate::atomic::temp_path(dir, "key");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp).map_err(Error::io_at("create", &tmp))?;
        f.write_all(&key).map_err(Error::io_at("write", &tmp))?;
        f.sync_all().map_err(Error::io_at("sync", &tmp))?;
        drop(f);
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "created a new staging key file");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(Error::io("create", path, e)),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Narrow the mode of a file this user owns to 0600 (a key or state file created by an earlier
/// build with the umask, or copied in with a wide mode). A file owned by someone else (a
/// read-only secret mount) is left alone, with a warning.
pub(crate) fn tighten(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if !meta.is_file() || meta.mode() & 0o077 == 0 {
            return;
        }
        if Some(meta.uid()) != crate::sys::effective_uid() {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", meta.mode() & 0o777),
                "file with private staging data is readable by others and not ours to narrow"
            );
            return;
        }
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), "cannot narrow the mode to 0600: {e}");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn hex_into(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn a_value_round_trips_and_is_bound_to_its_key_and_override() {
        let dir = tempfile::tempdir().unwrap();
        let a = SealKey::open_or_create(dir.path().join("a.key")).unwrap();
        let again = SealKey::open_or_create(dir.path().join("a.key")).unwrap();
        let b = SealKey::open_or_create(dir.path().join("b.key")).unwrap();
        let s = a.seal("PW", "hunter2");
        assert!(is_sealed(&s) && !s.contains("hunter2"), "{s}");
        assert_ne!(s, a.seal("PW", "hunter2"), "a fresh nonce per value");
        assert_eq!(again.open("PW", &s).unwrap(), "hunter2");
        let e = b.open("PW", &s).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert!(e.to_string().contains("b.key"), "{e}");
        assert!(a.open("OTHER", &s).is_err(), "bound to the override key");
        let mut damaged = s.clone();
        damaged.pop();
        assert!(a.open("PW", &damaged).is_err());
        assert!(a.open("PW", &format!("{SEALED_PREFIX}zz")).is_err());
        assert_eq!(a.open("PW", &a.seal("PW", "")).unwrap(), "");
    }

    #[test]
    fn default_path_is_the_state_file_with_a_key_extension() {
        assert_eq!(
            SealKey::default_path(Path::new("/s/.capsa/staging.db")),
            Path::new("/s/.capsa/staging.key")
        );
        assert_eq!(
            SealKey::default_path(Path::new("state")),
            Path::new("state.key")
        );
        assert_eq!(
            SealKey::default_path(Path::new("x.key")),
            Path::new("x.key.key")
        );
    }

    #[cfg(unix)]
    #[test]
    fn racing_creators_end_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let keys: Vec<SealKey> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| SealKey::open_or_create(&path).unwrap()))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let sealed = keys[0].seal("K", "v");
        for k in &keys {
            assert_eq!(k.open("K", &sealed).unwrap(), "v");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
