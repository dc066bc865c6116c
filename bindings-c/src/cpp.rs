//! The C++ API's Rust side: a cxx bridge (`namespace capsa`) over core.
//!
//! C++ code uses it through `include/capsa.hpp`, which wraps these opaque types in RAII
//! classes and turns errors into `capsa::Error` exceptions carrying the code and the message.
//! Every function here runs its body under `catch_unwind`: a panic becomes an error (code
//! `PANIC`) instead of cxx's abort, so none takes a DCC host down. String arguments arrive as
//! bytes and are checked here, so invalid UTF-8 is an `INVALID_ARGUMENT` error too.
//!
//! The error text crossing to C++ is `"<number>\x1f<CODE>\x1f<message>"`; `capsa.hpp`
//! splits it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use capsa::{BumpOptions, Capsule, CapsuleId, Crate, FrameSet, PadStyle, Sequence, Store};
use capsa::{StoreOptions, Version};

use crate::error::{bad_arg, panic_message, Failure};

#[cxx::bridge(namespace = "capsa")]
#[allow(missing_docs)]
pub mod ffi {
    /// One of the three sections of every crate.
    #[repr(u8)]
    enum Section {
        /// `artifacts/`
        Artifacts = 0,
        /// `publishes/`
        Publishes = 1,
        /// `scenes/`
        Scenes = 2,
    }

    /// How a sequence's padding is written.
    #[repr(u8)]
    enum PadStyle {
        /// `#`: frames before the token.
        Hash = 0,
        /// `@` per digit.
        At = 1,
        /// `%04d`: frames after the pattern.
        Printf = 2,
        /// `$F4`: frames after the pattern.
        Houdini = 3,
    }

    /// Where an override applies.
    #[repr(u8)]
    enum Scope {
        /// The app's environment.
        App = 0,
        /// The staging's settings.
        Staging = 1,
    }

    /// Whether an override's value may be shown.
    #[repr(u8)]
    enum Visibility {
        /// Shown.
        Public = 0,
        /// Stored for restore, shown as `***` everywhere.
        Private = 1,
    }

    /// A staging, as returned by the lifecycle commands (private values masked).
    struct StagingInfo {
        /// Its name.
        name: String,
        /// The deployed tag.
        tag: String,
        /// `Running`, `Failure`, `CreatePending`, `UpdatePending`, `DeletePending`, `Archived`.
        status: String,
        /// The failure reason, or empty.
        reason: String,
        /// The whole staging as a JSON object.
        json: String,
        /// False for `cleanup`'s answer when the staging is gone.
        exists: bool,
    }

    extern "Rust" {
        /// An open store.
        type RustStore;
        /// A capsule.
        type RustCapsule;
        /// A crate, or none (from `latest` when the capsule has no crate).
        type RustCrate;
        /// Options collected for a bump.
        type RustBumpOptions;
        /// A frame sequence.
        type RustSequence;
        /// A list of frame sequences.
        type RustSequenceList;
        /// A frame set.
        type RustFrameSet;
        /// A list of strings built from C++.
        type RustStringList;

        fn rust_library_version() -> &'static str;

        fn store_open(path: &[u8]) -> Result<Box<RustStore>>;
        fn store_init(path: &[u8], padding: u32) -> Result<Box<RustStore>>;
        fn root(self: &RustStore) -> Result<String>;
        fn padding(self: &RustStore) -> u32;
        fn create_capsule(self: &RustStore, id: &[u8]) -> Result<Box<RustCapsule>>;
        fn capsule(self: &RustStore, id: &[u8]) -> Result<Box<RustCapsule>>;
        fn capsules(self: &RustStore) -> Result<Vec<String>>;
        fn fsck(self: &RustStore, repair: bool) -> Result<usize>;

        fn id(self: &RustCapsule) -> String;
        fn path(self: &RustCapsule) -> Result<String>;
        fn new_bump_options() -> Box<RustBumpOptions>;
        fn set_comment(self: &mut RustBumpOptions, comment: &[u8]) -> Result<()>;
        fn set_created_by(self: &mut RustBumpOptions, who: &[u8]) -> Result<()>;
        fn add_carry_over(self: &mut RustBumpOptions, section: Section) -> Result<()>;
        fn add_tag(self: &mut RustBumpOptions, tag: &[u8]) -> Result<()>;
        fn bump(self: &RustCapsule, options: &RustBumpOptions) -> Result<Box<RustCrate>>;
        fn crates(self: &RustCapsule) -> Result<Vec<String>>;
        fn get(self: &RustCapsule, version: &[u8]) -> Result<Box<RustCrate>>;
        fn latest(self: &RustCapsule, published: bool) -> Result<Box<RustCrate>>;

        fn exists(self: &RustCrate) -> bool;
        fn version(self: &RustCrate) -> Result<String>;
        fn version_number(self: &RustCrate) -> Result<u32>;
        fn path(self: &RustCrate) -> Result<String>;
        fn section_path(self: &RustCrate, section: Section) -> Result<String>;
        fn metadata_json(self: &RustCrate) -> Result<String>;
        fn is_published(self: &RustCrate) -> Result<bool>;
        fn set_comment(self: &RustCrate, comment: &[u8]) -> Result<()>;
        fn seal(self: &RustCrate) -> Result<()>;
        fn publish(self: &RustCrate, src: &[u8], dest: &[u8], has_dest: bool) -> Result<String>;
        fn sequences(self: &RustCrate, section: Section) -> Result<Box<RustSequenceList>>;

        fn sequence_parse(pattern: &[u8]) -> Result<Box<RustSequence>>;
        fn head(self: &RustSequence) -> String;
        fn tail(self: &RustSequence) -> String;
        fn padding(self: &RustSequence) -> usize;
        fn frames(self: &RustSequence) -> String;
        fn frame_count(self: &RustSequence) -> usize;
        fn missing(self: &RustSequence) -> String;
        fn format(self: &RustSequence, style: PadStyle) -> Result<String>;
        fn pattern(self: &RustSequence, style: PadStyle) -> Result<String>;
        fn path(self: &RustSequence, frame: i64) -> String;
        fn pad_style_parse(name: &[u8]) -> Result<PadStyle>;

        fn len(self: &RustSequenceList) -> usize;
        fn get(self: &RustSequenceList, index: usize) -> Result<Box<RustSequence>>;
        fn new_string_list() -> Box<RustStringList>;
        fn push(self: &mut RustStringList, item: &[u8]) -> Result<()>;
        fn sequences_in(names: &RustStringList) -> Result<Box<RustSequenceList>>;
        fn find_sequences(dir: &[u8]) -> Result<Box<RustSequenceList>>;

        fn frameset_parse(spec: &[u8]) -> Result<Box<RustFrameSet>>;
        fn len(self: &RustFrameSet) -> usize;
        fn text(self: &RustFrameSet) -> String;
        fn frames(self: &RustFrameSet, limit: usize) -> Vec<i64>;

        /// A staging manager.
        type RustStagingManager;
        /// Overrides collected for a command.
        type RustOverrides;
        /// An event subscription (dropping it unsubscribes).
        type RustSubscription;

        fn staging_open_mock(state: &[u8]) -> Result<Box<RustStagingManager>>;
        fn staging_open_script(state: &[u8], dir: &[u8]) -> Result<Box<RustStagingManager>>;
        fn staging_open_kubernetes(
            state: &[u8],
            template_dir: &[u8],
            kubeconfig: &[u8],
            has_kubeconfig: bool,
        ) -> Result<Box<RustStagingManager>>;
        fn new_overrides() -> Box<RustOverrides>;
        fn push(
            self: &mut RustOverrides,
            scope: Scope,
            visibility: Visibility,
            key: &[u8],
            value: &[u8],
        ) -> Result<()>;
        fn create(
            self: &RustStagingManager,
            name: &[u8],
            tag: &[u8],
            overrides: &RustOverrides,
        ) -> Result<StagingInfo>;
        fn update(
            self: &RustStagingManager,
            name: &[u8],
            tag: &[u8],
            overrides: &RustOverrides,
            keep_overrides: bool,
        ) -> Result<StagingInfo>;
        fn delete_(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn restore(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn cleanup(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn get(self: &RustStagingManager, name: &[u8]) -> Result<StagingInfo>;
        fn list(self: &RustStagingManager) -> Result<Vec<StagingInfo>>;
        fn reconcile(self: &RustStagingManager) -> Result<String>;
        unsafe fn subscribe(
            self: &RustStagingManager,
            callback: usize,
            user_data: usize,
        ) -> Result<Box<RustSubscription>>;
        fn stopped(self: &RustSubscription) -> bool;

        unsafe fn archive(
            self: &RustCapsule,
            dest: &[u8],
            replace: bool,
            callback: usize,
            user_data: usize,
        ) -> Result<String>;
        fn take_offline(self: &RustCapsule, archive: &[u8]) -> Result<String>;
        fn is_offline(self: &RustCapsule) -> bool;
        fn retrieve(self: &RustStore, id: &[u8]) -> Result<Box<RustCapsule>>;
        unsafe fn restore(
            self: &RustStore,
            zip: &[u8],
            replace: bool,
            callback: usize,
            user_data: usize,
        ) -> Result<Box<RustCapsule>>;
        unsafe fn archive_verify(zip: &[u8], callback: usize, user_data: usize) -> Result<String>;

        fn capsule_id_kind(value: &[u8]) -> Result<String>;
        fn version_parse(value: &[u8]) -> Result<u32>;
        fn version_format(number: u32, padding: u32) -> Result<String>;
        fn version_compare(a: &[u8], b: &[u8]) -> Result<i32>;
        fn version_next(value: &[u8], padding: u32) -> Result<String>;
    }
}

/// The error crossing into C++: `"<number>\x1f<CODE>\x1f<message>"`.
#[derive(Debug)]
pub struct CxxError(String);

impl std::fmt::Display for CxxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Failure> for CxxError {
    fn from(f: Failure) -> CxxError {
        let status = f.status();
        CxxError(format!(
            "{}\u{1f}{}\u{1f}{}",
            status as u32,
            status.name(),
            f.message()
        ))
    }
}

type R<T> = Result<T, CxxError>;

/// Run a body, catching panics; errors become [`CxxError`].
fn g<T>(body: impl FnOnce() -> Result<T, Failure>) -> R<T> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|p| Err(Failure::Panic(panic_message(p.as_ref()))))
        .map_err(CxxError::from)
}

/// Infallible bodies still must not unwind into C++: a panic gives `fallback`.
fn safe<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn text<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| bad_arg(format!("`{name}` is not valid UTF-8 ({e})")))
}

fn path(bytes: &[u8], name: &str) -> Result<PathBuf, Failure> {
    #[cfg(unix)]
    {
        let _ = name;
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        text(bytes, name).map(PathBuf::from)
    }
}

fn path_text(p: &std::path::Path) -> Result<String, Failure> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| bad_arg(format!("path {} is not valid UTF-8", p.display())))
}

fn section(s: ffi::Section) -> Result<capsa::Section, Failure> {
    match s {
        ffi::Section::Artifacts => Ok(capsa::Section::Artifacts),
        ffi::Section::Publishes => Ok(capsa::Section::Publishes),
        ffi::Section::Scenes => Ok(capsa::Section::Scenes),
        other => Err(bad_arg(format!("{} is not a capsa::Section", other.repr))),
    }
}

fn style(s: ffi::PadStyle) -> Result<PadStyle, Failure> {
    match s {
        ffi::PadStyle::Hash => Ok(PadStyle::Hash),
        ffi::PadStyle::At => Ok(PadStyle::At),
        ffi::PadStyle::Printf => Ok(PadStyle::Printf),
        ffi::PadStyle::Houdini => Ok(PadStyle::Houdini),
        other => Err(bad_arg(format!("{} is not a capsa::PadStyle", other.repr))),
    }
}

fn rust_library_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// An open store.
pub struct RustStore(Store);
/// A capsule.
pub struct RustCapsule(Capsule);
/// A crate, or none.
pub struct RustCrate(Option<Crate>);
/// Options for a bump.
#[derive(Default)]
pub struct RustBumpOptions(BumpOptions);
/// A sequence.
pub struct RustSequence(Sequence);
/// A list of sequences.
pub struct RustSequenceList(Vec<Sequence>);
/// A frame set.
pub struct RustFrameSet(FrameSet);
/// A list of strings.
#[derive(Default)]
pub struct RustStringList(Vec<String>);

fn store_open(p: &[u8]) -> R<Box<RustStore>> {
    g(|| Ok(Box::new(RustStore(Store::open(path(p, "path")?)?))))
}

fn store_init(p: &[u8], padding: u32) -> R<Box<RustStore>> {
    g(|| {
        let mut options = StoreOptions::default();
        if padding != 0 {
            options.padding = padding as usize;
        }
        Ok(Box::new(RustStore(Store::init(path(p, "path")?, options)?)))
    })
}

impl RustStore {
    fn root(&self) -> R<String> {
        g(|| path_text(self.0.root()))
    }
    fn padding(&self) -> u32 {
        safe(0, || self.0.padding() as u32)
    }
    fn create_capsule(&self, id: &[u8]) -> R<Box<RustCapsule>> {
        g(|| {
            Ok(Box::new(RustCapsule(
                self.0.create_capsule(text(id, "id")?)?,
            )))
        })
    }
    fn capsule(&self, id: &[u8]) -> R<Box<RustCapsule>> {
        g(|| Ok(Box::new(RustCapsule(self.0.capsule(text(id, "id")?)?))))
    }
    fn capsules(&self) -> R<Vec<String>> {
        g(|| {
            Ok(self
                .0
                .capsules()?
                .iter()
                .map(|c| c.id().to_string())
                .collect())
        })
    }
    fn fsck(&self, repair: bool) -> R<usize> {
        g(|| {
            let report = self.0.fsck(repair)?;
            Ok(report.problems.iter().filter(|p| !p.repaired).count())
        })
    }
}

fn new_bump_options() -> Box<RustBumpOptions> {
    Box::default()
}

impl RustBumpOptions {
    fn set_comment(&mut self, comment: &[u8]) -> R<()> {
        g(|| {
            self.0.comment = Some(text(comment, "comment")?.to_owned());
            Ok(())
        })
    }
    fn set_created_by(&mut self, who: &[u8]) -> R<()> {
        g(|| {
            self.0.created_by = Some(text(who, "created_by")?.to_owned());
            Ok(())
        })
    }
    fn add_carry_over(&mut self, s: ffi::Section) -> R<()> {
        g(|| {
            self.0.carry_over.push(section(s)?);
            Ok(())
        })
    }
    fn add_tag(&mut self, tag: &[u8]) -> R<()> {
        g(|| {
            self.0.tags.push(text(tag, "tag")?.to_owned());
            Ok(())
        })
    }
}

impl RustCapsule {
    fn id(&self) -> String {
        safe(String::new(), || self.0.id().to_string())
    }
    fn path(&self) -> R<String> {
        g(|| path_text(self.0.path()))
    }
    fn bump(&self, options: &RustBumpOptions) -> R<Box<RustCrate>> {
        g(|| Ok(Box::new(RustCrate(Some(self.0.bump(options.0.clone())?)))))
    }
    fn crates(&self) -> R<Vec<String>> {
        g(|| Ok(self.0.crates()?.iter().map(Crate::version_str).collect()))
    }
    fn get(&self, version: &[u8]) -> R<Box<RustCrate>> {
        g(|| {
            let v = Version::parse(text(version, "version")?)?;
            Ok(Box::new(RustCrate(Some(self.0.get(v)?))))
        })
    }
    fn latest(&self, published: bool) -> R<Box<RustCrate>> {
        g(|| {
            let k = if published {
                self.0.latest_published()?
            } else {
                self.0.latest()?
            };
            Ok(Box::new(RustCrate(k)))
        })
    }
}

impl RustCrate {
    fn get(&self) -> Result<&Crate, Failure> {
        self.0
            .as_ref()
            .ok_or_else(|| bad_arg("this crate handle holds no crate"))
    }
    fn exists(&self) -> bool {
        self.0.is_some()
    }
    fn version(&self) -> R<String> {
        g(|| Ok(self.get()?.version_str()))
    }
    fn version_number(&self) -> R<u32> {
        g(|| Ok(self.get()?.version().number()))
    }
    fn path(&self) -> R<String> {
        g(|| path_text(self.get()?.path()))
    }
    fn section_path(&self, s: ffi::Section) -> R<String> {
        g(|| path_text(&self.get()?.section(section(s)?)))
    }
    fn metadata_json(&self) -> R<String> {
        g(|| {
            let meta = self.get()?.metadata()?;
            serde_json::to_string(&meta)
                .map_err(|e| bad_arg(format!("metadata does not serialise: {e}")))
        })
    }
    fn is_published(&self) -> R<bool> {
        g(|| Ok(self.get()?.is_published()?))
    }
    fn set_comment(&self, comment: &[u8]) -> R<()> {
        g(|| Ok(self.get()?.set_comment(text(comment, "comment")?)?))
    }
    fn seal(&self) -> R<()> {
        g(|| Ok(self.get()?.seal()?))
    }
    fn publish(&self, src: &[u8], dest: &[u8], has_dest: bool) -> R<String> {
        g(|| {
            let src = path(src, "src")?;
            let dest = if has_dest {
                Some(path(dest, "dest")?)
            } else {
                None
            };
            path_text(&self.get()?.publish(&src, dest.as_deref())?)
        })
    }
    fn sequences(&self, s: ffi::Section) -> R<Box<RustSequenceList>> {
        g(|| {
            Ok(Box::new(RustSequenceList(
                self.get()?.sequences(section(s)?)?,
            )))
        })
    }
}

fn sequence_parse(pattern: &[u8]) -> R<Box<RustSequence>> {
    g(|| {
        Ok(Box::new(RustSequence(Sequence::parse(text(
            pattern, "pattern",
        )?)?)))
    })
}

fn pad_style_parse(name: &[u8]) -> R<ffi::PadStyle> {
    g(|| {
        Ok(match text(name, "style")?.parse::<PadStyle>()? {
            PadStyle::Hash => ffi::PadStyle::Hash,
            PadStyle::At => ffi::PadStyle::At,
            PadStyle::Printf => ffi::PadStyle::Printf,
            PadStyle::Houdini => ffi::PadStyle::Houdini,
        })
    })
}

impl RustSequence {
    fn head(&self) -> String {
        safe(String::new(), || self.0.head.clone())
    }
    fn tail(&self) -> String {
        safe(String::new(), || self.0.tail.clone())
    }
    fn padding(&self) -> usize {
        self.0.padding
    }
    fn frames(&self) -> String {
        safe(String::new(), || self.0.frames.to_string())
    }
    fn frame_count(&self) -> usize {
        safe(0, || self.0.frames.len())
    }
    fn missing(&self) -> String {
        safe(String::new(), || self.0.missing().to_string())
    }
    fn format(&self, s: ffi::PadStyle) -> R<String> {
        g(|| Ok(self.0.format(style(s)?)))
    }
    fn pattern(&self, s: ffi::PadStyle) -> R<String> {
        g(|| Ok(self.0.pattern(style(s)?)))
    }
    fn path(&self, frame: i64) -> String {
        safe(String::new(), || self.0.path(frame))
    }
}

impl RustSequenceList {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn get(&self, index: usize) -> R<Box<RustSequence>> {
        g(|| {
            self.0
                .get(index)
                .map(|s| Box::new(RustSequence(s.clone())))
                .ok_or_else(|| bad_arg(format!("index {index} is out of range")))
        })
    }
}

fn new_string_list() -> Box<RustStringList> {
    Box::default()
}

impl RustStringList {
    fn push(&mut self, item: &[u8]) -> R<()> {
        g(|| {
            self.0.push(text(item, "item")?.to_owned());
            Ok(())
        })
    }
}

fn sequences_in(names: &RustStringList) -> R<Box<RustSequenceList>> {
    g(|| Ok(Box::new(RustSequenceList(capsa::sequences_in(&names.0)))))
}

fn find_sequences(dir: &[u8]) -> R<Box<RustSequenceList>> {
    g(|| {
        Ok(Box::new(RustSequenceList(capsa::find_sequences(&path(
            dir, "dir",
        )?)?)))
    })
}

fn frameset_parse(spec: &[u8]) -> R<Box<RustFrameSet>> {
    g(|| {
        Ok(Box::new(RustFrameSet(FrameSet::parse(text(
            spec, "spec",
        )?)?)))
    })
}

impl RustFrameSet {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn text(&self) -> String {
        safe(String::new(), || self.0.to_string())
    }
    fn frames(&self, limit: usize) -> Vec<i64> {
        safe(Vec::new(), || self.0.iter().take(limit).collect())
    }
}

fn capsule_id_kind(value: &[u8]) -> R<String> {
    g(|| {
        Ok(CapsuleId::parse(text(value, "value")?)?
            .kind()
            .as_str()
            .to_owned())
    })
}

fn version_parse(value: &[u8]) -> R<u32> {
    g(|| Ok(Version::parse(text(value, "value")?)?.number()))
}

fn version_format(number: u32, padding: u32) -> R<String> {
    g(|| Ok(Version::new(number)?.padded(padding as usize)))
}

fn version_compare(a: &[u8], b: &[u8]) -> R<i32> {
    g(|| {
        let a = Version::parse(text(a, "a")?)?;
        let b = Version::parse(text(b, "b")?)?;
        Ok(a.cmp(&b) as i32)
    })
}

fn version_next(value: &[u8], padding: u32) -> R<String> {
    g(|| {
        Ok(Version::parse(text(value, "value")?)?
            .next()?
            .padded(padding as usize))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_bridge_function_becomes_an_error_not_an_abort() {
        let r: R<()> = g(|| panic!("boom"));
        let text = r.unwrap_err().to_string();
        assert!(text.starts_with("1000\u{1f}PANIC\u{1f}"), "{text}");
        assert!(text.contains("boom"));
    }

    #[test]
    fn errors_carry_number_code_and_message() {
        let text = capsule_id_kind(b"../x").unwrap_err().to_string();
        let parts: Vec<&str> = text.split('\u{1f}').collect();
        assert_eq!(parts[0], "3");
        assert_eq!(parts[1], "INVALID_NAME");
        assert!(parts[2].contains("../x"));
        let text = version_parse(b"v\xff").unwrap_err().to_string();
        assert!(text.starts_with("15\u{1f}INVALID_ARGUMENT\u{1f}"), "{text}");
    }
}

/// A staging manager.
pub struct RustStagingManager(capsa::staging::StagingManager);
/// Overrides for a command.
#[derive(Default)]
pub struct RustOverrides(Vec<capsa::staging::Override>);

/// An event subscription (the C ABI's, shared): dropping it waits for a callback in flight,
/// then unsubscribes.
pub struct RustSubscription(Box<crate::staging::capsa_subscription>);

fn staging_info(s: Option<capsa::staging::Staging>) -> Result<ffi::StagingInfo, Failure> {
    let Some(s) = s else {
        return Ok(ffi::StagingInfo {
            name: String::new(),
            tag: String::new(),
            status: String::new(),
            reason: String::new(),
            json: "null".into(),
            exists: false,
        });
    };
    Ok(ffi::StagingInfo {
        json: serde_json::to_string(&s).map_err(|e| bad_arg(format!("staging: {e}")))?,
        name: s.name,
        tag: s.tag,
        status: s.status.as_str().to_owned(),
        reason: s.reason.unwrap_or_default(),
        exists: true,
    })
}

fn staging_open_mock(state: &[u8]) -> R<Box<RustStagingManager>> {
    g(|| {
        let m = capsa::staging::StagingManager::open(
            path(state, "state")?,
            std::sync::Arc::new(capsa::staging::MockDeployer::new()),
        )?;
        Ok(Box::new(RustStagingManager(m)))
    })
}

fn staging_open_script(state: &[u8], dir: &[u8]) -> R<Box<RustStagingManager>> {
    g(|| {
        let dir = path(dir, "dir")?;
        if !dir.is_dir() {
            return Err(Failure::Core(capsa::Error::NotFound {
                what: "script directory",
                name: dir.display().to_string(),
            }));
        }
        let m = capsa::staging::StagingManager::open(
            path(state, "state")?,
            std::sync::Arc::new(capsa::staging::ScriptDeployer::new(dir)),
        )?;
        Ok(Box::new(RustStagingManager(m)))
    })
}

fn staging_open_kubernetes(
    state: &[u8],
    template_dir: &[u8],
    kubeconfig: &[u8],
    has_kubeconfig: bool,
) -> R<Box<RustStagingManager>> {
    g(|| {
        let kubeconfig = if has_kubeconfig {
            Some(path(kubeconfig, "kubeconfig")?)
        } else {
            None
        };
        let deployer = capsa::staging::KubernetesDeployer::new(
            path(template_dir, "template_dir")?,
            kubeconfig,
        )?;
        let m = capsa::staging::StagingManager::open(
            path(state, "state")?,
            std::sync::Arc::new(deployer),
        )?;
        Ok(Box::new(RustStagingManager(m)))
    })
}

fn new_overrides() -> Box<RustOverrides> {
    Box::default()
}

impl RustOverrides {
    fn push(
        &mut self,
        scope: ffi::Scope,
        visibility: ffi::Visibility,
        key: &[u8],
        value: &[u8],
    ) -> R<()> {
        g(|| {
            let scope = match scope {
                ffi::Scope::App => capsa::staging::Scope::App,
                ffi::Scope::Staging => capsa::staging::Scope::Staging,
                other => return Err(bad_arg(format!("{} is not a capsa::Scope", other.repr))),
            };
            let (key, value) = (text(key, "key")?, text(value, "value")?);
            self.0.push(match visibility {
                ffi::Visibility::Public => capsa::staging::Override::public(scope, key, value),
                ffi::Visibility::Private => capsa::staging::Override::private(scope, key, value),
                other => {
                    return Err(bad_arg(format!(
                        "{} is not a capsa::Visibility",
                        other.repr
                    )))
                }
            });
            Ok(())
        })
    }
}

impl RustStagingManager {
    fn create(&self, name: &[u8], tag: &[u8], o: &RustOverrides) -> R<ffi::StagingInfo> {
        g(|| {
            let s = self
                .0
                .create(text(name, "name")?, text(tag, "tag")?, o.0.clone())?;
            staging_info(Some(s))
        })
    }
    fn update(
        &self,
        name: &[u8],
        tag: &[u8],
        o: &RustOverrides,
        keep_overrides: bool,
    ) -> R<ffi::StagingInfo> {
        g(|| {
            let o = if keep_overrides {
                None
            } else {
                Some(o.0.clone())
            };
            staging_info(Some(self.0.update(
                text(name, "name")?,
                text(tag, "tag")?,
                o,
            )?))
        })
    }
    fn delete_(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(Some(self.0.delete(text(name, "name")?)?)))
    }
    fn restore(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(Some(self.0.restore(text(name, "name")?)?)))
    }
    fn cleanup(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(self.0.cleanup(text(name, "name")?)?))
    }
    fn get(&self, name: &[u8]) -> R<ffi::StagingInfo> {
        g(|| staging_info(Some(self.0.get(text(name, "name")?)?)))
    }
    fn list(&self) -> R<Vec<ffi::StagingInfo>> {
        g(|| {
            self.0
                .list()?
                .into_iter()
                .map(|s| staging_info(Some(s)))
                .collect()
        })
    }
    fn reconcile(&self) -> R<String> {
        g(|| {
            let report = self.0.reconcile()?;
            serde_json::to_string(&report).map_err(|e| bad_arg(format!("report: {e}")))
        })
    }
    /// # Safety
    /// `callback` is the address of a `capsa_event_fn` and `user_data` its argument, as
    /// `capsa_staging_subscribe` takes them (capsa.hpp passes its own trampoline).
    unsafe fn subscribe(&self, callback: usize, user_data: usize) -> R<Box<RustSubscription>> {
        g(|| {
            if callback == 0 {
                return Err(bad_arg("the event callback is null"));
            }
            // SAFETY: per the contract, a valid `capsa_event_fn` address.
            let cb: unsafe extern "C" fn(
                *const crate::staging::capsa_staging_event,
                *mut std::ffi::c_void,
            ) -> i32 = unsafe { std::mem::transmute(callback) };
            let sub = crate::staging::subscribe(&self.0, cb, user_data as *mut std::ffi::c_void);
            Ok(Box::new(RustSubscription(Box::new(sub))))
        })
    }
}

impl RustSubscription {
    fn stopped(&self) -> bool {
        self.0.stopped()
    }
}

/// A progress callback passed from C++ by address (`capsa_progress_fn`; 0 for none).
///
/// # Safety
/// `callback` is 0 or the address of a `capsa_progress_fn`.
unsafe fn progress_callback(callback: usize) -> crate::archive::capsa_progress_fn {
    if callback == 0 {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { std::mem::transmute::<usize, CProgressFn>(callback) })
    }
}

type CProgressFn =
    unsafe extern "C" fn(*const crate::archive::capsa_progress, *mut std::ffi::c_void) -> i32;

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| bad_arg(format!("report does not serialise: {e}")))
}

impl RustCapsule {
    /// # Safety
    /// `callback` is 0 or a `capsa_progress_fn` address, `user_data` its argument.
    unsafe fn archive(
        &self,
        dest: &[u8],
        replace: bool,
        callback: usize,
        user_data: usize,
    ) -> R<String> {
        g(|| {
            let mut opts = capsa::ArchiveOptions {
                replace,
                ..Default::default()
            };
            // SAFETY: per the contract.
            let cb = unsafe { progress_callback(callback) };
            let (f, refused) = crate::archive::progress_bridge(
                cb,
                user_data as *mut std::ffi::c_void,
                &opts.cancel,
            );
            opts.progress = f;
            let report = capsa::archive::archive(&self.0, path(dest, "dest")?, opts)
                .map_err(|e| crate::archive::explain(e, &refused))?;
            to_json(&report)
        })
    }
    fn take_offline(&self, archive: &[u8]) -> R<String> {
        g(|| to_json(&self.0.take_offline(path(archive, "archive")?)?))
    }
    fn is_offline(&self) -> bool {
        safe(false, || self.0.is_offline())
    }
}

impl RustStore {
    fn retrieve(&self, id: &[u8]) -> R<Box<RustCapsule>> {
        g(|| Ok(Box::new(RustCapsule(self.0.retrieve(text(id, "id")?)?))))
    }
    /// # Safety
    /// As [`RustCapsule::archive`].
    unsafe fn restore(
        &self,
        zip: &[u8],
        replace: bool,
        callback: usize,
        user_data: usize,
    ) -> R<Box<RustCapsule>> {
        g(|| {
            let mut opts = capsa::RestoreOptions {
                replace,
                ..Default::default()
            };
            // SAFETY: per the contract.
            let cb = unsafe { progress_callback(callback) };
            let (f, refused) = crate::archive::progress_bridge(
                cb,
                user_data as *mut std::ffi::c_void,
                &opts.cancel,
            );
            opts.progress = f;
            let c = capsa::archive::restore(path(zip, "zip")?, &self.0, opts)
                .map_err(|e| crate::archive::explain(e, &refused))?;
            Ok(Box::new(RustCapsule(c)))
        })
    }
}

/// # Safety
/// As [`RustCapsule::archive`].
unsafe fn archive_verify(zip: &[u8], callback: usize, user_data: usize) -> R<String> {
    g(|| {
        let mut opts = capsa::archive::VerifyOptions::default();
        // SAFETY: per the contract.
        let cb = unsafe { progress_callback(callback) };
        let (f, refused) =
            crate::archive::progress_bridge(cb, user_data as *mut std::ffi::c_void, &opts.cancel);
        opts.progress = f;
        let report = capsa::archive::verify_with(path(zip, "zip")?, opts)
            .map_err(|e| crate::archive::explain(e, &refused))?;
        to_json(&report)
    })
}
