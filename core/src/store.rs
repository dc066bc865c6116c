//! The store: a root directory of Capsules plus `.capsa/` with its config and scratch area.
//!
//! ```text
//! <root>/.capsa/store.toml      schema version, version padding, default archive policy
//! <root>/.capsa/tmp/            scratch (restores, archives in progress)
//! <root>/<capsule id>/          one directory per Capsule
//! ```
//!
//! The filesystem backend is built for a shared network mount: every step that must be
//! exclusive is an atomic directory creation or a no-replace rename; nothing in the store
//! records an absolute path, so the same store works mounted at `/mnt/show`, `S:\` or
//! `/Volumes/show`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::capsule::Capsule;
use crate::error::{Error, Result};
use crate::id::CapsuleId;
use crate::krate::Section;
use crate::parallel;
use crate::progress::CancelToken;
use crate::seq::Sequence;
use crate::version::{Version, DEFAULT_PADDING, MAX_PADDING};

/// The directory inside a store (and inside each capsule) that holds capsa's own files.
pub const INTERNAL_DIR: &str = ".capsa";
/// The store's config file inside [`INTERNAL_DIR`].
pub const CONFIG_FILE: &str = "store.toml";
/// The schema version this build writes; stores with the same major version open.
pub const SCHEMA_VERSION: semver::Version = semver::Version::new(1, 0, 0);

/// Options for [`Store::init`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Digits in a crate version (`3` gives `v001`). 1 to 9.
    pub padding: usize,
    /// Default archive compression policy (`auto`, `store` or `deflate`).
    pub archive_policy: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            padding: DEFAULT_PADDING,
            archive_policy: "auto".into(),
        }
    }
}

/// The contents of `.capsa/store.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// Schema version of the store layout (semver; the major must match this build's).
    pub schema: semver::Version,
    /// Digits in a crate version.
    pub padding: usize,
    /// Archive defaults.
    #[serde(default)]
    pub archive: ArchiveDefaults,
}

/// The `[archive]` table of `store.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveDefaults {
    /// Compression policy: `auto` (store compressed media, deflate the rest), `store`, `deflate`.
    pub policy: String,
}

impl Default for ArchiveDefaults {
    fn default() -> Self {
        ArchiveDefaults {
            policy: "auto".into(),
        }
    }
}

struct Inner {
    root: PathBuf,
    config: StoreConfig,
}

/// An open store. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .field("padding", &self.inner.config.padding)
            .finish()
    }
}

fn validate_options(options: &StoreOptions) -> Result<()> {
    if !(1..=MAX_PADDING).contains(&options.padding) {
        return Err(Error::InvalidArgument {
            what: "padding",
            reason: format!("must be 1 to {MAX_PADDING}, got {}", options.padding),
        });
    }
    if !["auto", "store", "deflate"].contains(&options.archive_policy.as_str()) {
        return Err(Error::InvalidArgument {
            what: "archive policy",
            reason: format!(
                "must be auto, store or deflate, got {:?}",
                options.archive_policy
            ),
        });
    }
    Ok(())
}

impl Store {
    /// Create a new store at `path` (the directory is created if missing; it may already
    /// hold other files). Fails with `AlreadyExists` if it is a store already.
    pub fn init(path: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let root = path.as_ref();
        validate_options(&options)?;
        fs::create_dir_all(root).map_err(Error::io_at("create directory", root))?;
        let internal = root.join(INTERNAL_DIR);
        if internal.join(CONFIG_FILE).exists() {
            return Err(Error::AlreadyExists {
                what: "store",
                name: root.display().to_string(),
            });
        }
        fs::create_dir_all(internal.join("tmp"))
            .map_err(Error::io_at("create directory", &internal))?;
        let config = StoreConfig {
            schema: SCHEMA_VERSION,
            padding: options.padding,
            archive: ArchiveDefaults {
                policy: options.archive_policy,
            },
        };
        let text = toml::to_string(&config).map_err(|e| Error::InvalidArgument {
            what: "store config",
            reason: e.to_string(),
        })?;
        let body = format!("# capsa store configuration\n{text}");
        // Claim the config name without replacing: two concurrent inits, one store.
        let tmp = atomic::temp_path(&internal, "store-toml");
        fs::write(&tmp, body).map_err(Error::io_at("write", &tmp))?;
        atomic::rename_noreplace(&tmp, &internal.join(CONFIG_FILE), "store").inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })?;
        tracing::info!(root = %root.display(), "initialised store");
        Store::open(root)
    }

    /// Open an existing store. Fails with `InvalidStore` if `path` is not one, `Corrupt` if
    /// its config does not parse, `Unsupported` if it has a newer major schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let root = path.as_ref();
        let meta = fs::metadata(root).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::InvalidStore {
                path: root.to_path_buf(),
                reason: "the directory does not exist".into(),
            },
            _ => Error::io("open store", root, e),
        })?;
        if !meta.is_dir() {
            return Err(Error::InvalidStore {
                path: root.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        let config_path = root.join(INTERNAL_DIR).join(CONFIG_FILE);
        let text = match crate::safe_file::read_small_text(
            &config_path,
            crate::safe_file::Links::Refuse,
            crate::safe_file::limits::STORE_CONFIG,
            "store config",
        ) {
            Ok(t) => t,
            Err(Error::NotFound { .. }) => {
                return Err(Error::InvalidStore {
                    path: root.to_path_buf(),
                    reason: format!(
                        "no {INTERNAL_DIR}/{CONFIG_FILE} (run `capsa init` to make one)"
                    ),
                })
            }
            Err(e) => return Err(e),
        };
        let config = parse_config(&config_path, &text)?;
        let root = root.to_path_buf();
        Ok(Store {
            inner: Arc::new(Inner { root, config }),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The store's configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// Digits in a crate version.
    pub fn padding(&self) -> usize {
        self.inner.config.padding
    }

    /// `<root>/.capsa`: capsa's own files (config, state, scratch).
    pub fn internal_dir(&self) -> PathBuf {
        self.inner.root.join(INTERNAL_DIR)
    }

    /// `<root>/.capsa/tmp`: scratch space on the same filesystem as the capsules, so a
    /// finished piece of work can be renamed into place. `UnsafePath` if it (or `.capsa`)
    /// is a symbolic link.
    pub fn scratch_dir(&self) -> Result<PathBuf> {
        let dir = self.internal_dir().join("tmp");
        // Restores, offline trash and replaced capsules go here: never through a link.
        crate::beneath::check(self.root(), &dir)?;
        fs::create_dir_all(&dir).map_err(Error::io_at("create directory", &dir))?;
        Ok(dir)
    }

    /// The directory a capsule with this id has (or would have).
    pub fn capsule_path(&self, id: &CapsuleId) -> PathBuf {
        self.inner.root.join(id.as_str())
    }

    /// Create a new, empty capsule. `AlreadyExists` if it exists.
    pub fn create_capsule(&self, id: &str) -> Result<Capsule> {
        let id = CapsuleId::parse(id)?;
        let path = self.capsule_path(&id);
        match fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists {
                    what: "capsule",
                    name: id.to_string(),
                })
            }
            Err(e) => return Err(Error::io("create capsule", &path, e)),
        }
        tracing::info!(capsule = %id, "created capsule");
        Ok(Capsule::new(self.clone(), id, path))
    }

    /// An existing capsule. `NotFound` if there is none with this id.
    pub fn capsule(&self, id: &str) -> Result<Capsule> {
        let id = CapsuleId::parse(id)?;
        let path = self.capsule_path(&id);
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => Ok(Capsule::new(self.clone(), id, path)),
            Ok(_) => Err(Error::NotFound {
                what: "capsule",
                name: id.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound {
                what: "capsule",
                name: id.to_string(),
            }),
            Err(e) => Err(Error::io("open capsule", &path, e)),
        }
    }

    /// Every capsule, sorted by id. Entries that are not valid capsule ids are skipped.
    pub fn capsules(&self) -> Result<Vec<Capsule>> {
        let root = &self.inner.root;
        let mut out = Vec::new();
        for entry in fs::read_dir(root).map_err(Error::io_at("list", root))? {
            let entry = entry.map_err(Error::io_at("list", root))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(id) = CapsuleId::parse(&name) else {
                continue;
            };
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(Capsule::new(self.clone(), id, entry.path()));
            }
        }
        out.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(out)
    }

    /// Every frame sequence in every complete crate of every capsule (each section,
    /// subdirectories included, as [`crate::Crate::sequences`] finds them), sorted by capsule,
    /// version, section, then head, tail and padding.
    ///
    /// The capsules are read in parallel (one thread per core, at most 8): on a large store
    /// the directory reads dominate, and the filesystem serves them concurrently.
    pub fn sequences(&self) -> Result<Vec<CrateSequence>> {
        let capsules = self.capsules()?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let found: Vec<Mutex<Vec<CrateSequence>>> =
            capsules.iter().map(|_| Mutex::default()).collect();
        parallel::for_each(capsules.len(), threads, &CancelToken::new(), |i| {
            let sequences = capsule_sequences(&capsules[i])?;
            *found[i].lock().unwrap_or_else(|p| p.into_inner()) = sequences;
            Ok(())
        })?;
        let out = found
            .into_iter()
            .flat_map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .collect();
        Ok(out)
    }

    /// Bring an offline capsule back from its recorded archive: check the archive's SHA-256
    /// against the stub, verify it, restore it into place (replacing the stub-only
    /// directory). `NotFound` if the archive is gone, `Corrupt` if it changed,
    /// `InvalidArgument` if the capsule is not offline.
    pub fn retrieve(&self, id: &str) -> Result<Capsule> {
        crate::archive::offline::retrieve(self, id)
    }
}

/// A frame sequence found by [`Store::sequences`], with the crate and section it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateSequence {
    /// The capsule.
    pub capsule: CapsuleId,
    /// The crate's version.
    pub version: Version,
    /// The section the sequence is in.
    pub section: Section,
    /// The sequence; its head is relative to the section (`beauty/plate.`).
    pub sequence: Sequence,
}

/// The sequences of one capsule's complete crates, oldest crate first.
fn capsule_sequences(capsule: &Capsule) -> Result<Vec<CrateSequence>> {
    let mut out = Vec::new();
    for krate in capsule.crates()? {
        for section in Section::ALL {
            for sequence in krate.sequences(section)? {
                out.push(CrateSequence {
                    capsule: capsule.id().clone(),
                    version: krate.version(),
                    section,
                    sequence,
                });
            }
        }
    }
    Ok(out)
}

fn parse_config(path: &Path, text: &str) -> Result<StoreConfig> {
    // Read the schema first so a newer store gets "unsupported", not a parse error about
    // fields this build does not know.
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| Error::corrupt(path, format!("not valid TOML: {}", e.message())))?;
    let schema = table
        .get("schema")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::corrupt(path, "no `schema` version"))?;
    let schema = semver::Version::parse(schema)
        .map_err(|e| Error::corrupt(path, format!("schema {schema:?} is not semver: {e}")))?;
    if schema.major > SCHEMA_VERSION.major {
        return Err(Error::Unsupported {
            what: format!(
                "store schema {schema} is newer than this capsa supports ({}.x); upgrade capsa",
                SCHEMA_VERSION.major
            ),
        });
    }
    if schema.major < SCHEMA_VERSION.major {
        return Err(Error::Unsupported {
            what: format!("store schema {schema} is older than {SCHEMA_VERSION}"),
        });
    }
    let config: StoreConfig = toml::from_str(text)
        .map_err(|e| Error::corrupt(path, format!("bad store config: {}", e.message())))?;
    validate_options(&StoreOptions {
        padding: config.padding,
        archive_policy: config.archive.policy.clone(),
    })
    .map_err(|e| Error::corrupt(path, e.to_string()))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn init_open_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.padding(), 3);
        let err = Store::init(dir.path(), StoreOptions::default()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists);
        Store::open(dir.path()).unwrap();

        let other = tempfile::tempdir().unwrap();
        let err = Store::open(other.path()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidStore);
        assert!(err.to_string().contains("store.toml"), "{err}");
        assert!(
            !other.path().join(INTERNAL_DIR).exists(),
            "open must not create"
        );

        let bad = StoreOptions {
            padding: 0,
            ..StoreOptions::default()
        };
        assert_eq!(
            Store::init(other.path().join("x"), bad).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn newer_major_schema_is_unsupported_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        Store::init(dir.path(), StoreOptions::default()).unwrap();
        let cfg = dir.path().join(INTERNAL_DIR).join(CONFIG_FILE);
        let text = "schema = \"2.1.0\"\npadding = 3\nnew_field = 1\n";
        fs::write(&cfg, text).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unsupported);
        assert!(err.to_string().contains("2.1.0"), "{err}");
        assert_eq!(fs::read_to_string(&cfg).unwrap(), text);
        fs::write(&cfg, "schema = 1").unwrap();
        assert_eq!(
            Store::open(dir.path()).unwrap_err().code(),
            ErrorCode::Corrupt
        );
    }

    #[test]
    fn capsules_are_validated_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(dir.path(), StoreOptions::default()).unwrap();
        store.create_capsule("b").unwrap();
        store.create_capsule("656796239c1b981568180614").unwrap();
        assert_eq!(
            store.create_capsule("b").unwrap_err().code(),
            ErrorCode::AlreadyExists
        );
        fs::create_dir(dir.path().join("not valid")).unwrap();
        let ids: Vec<String> = store
            .capsules()
            .unwrap()
            .iter()
            .map(|c| c.id().to_string())
            .collect();
        assert_eq!(ids, ["656796239c1b981568180614", "b"]);
        assert_eq!(store.capsule("zz").unwrap_err().code(), ErrorCode::NotFound);
        for bad in ["../x", "a/b", "", ".hidden", "a\0b"] {
            assert_eq!(
                store.create_capsule(bad).unwrap_err().code(),
                ErrorCode::InvalidName
            );
        }
        assert!(!dir.path().parent().unwrap().join("x").exists());
    }
}
