//! Stores, capsules and crates: open or create a store, capsules, bump (with carry-over),
//! latest, publish, seal, metadata.

use capsa::{BumpOptions, Capsule, Crate, Store, StoreOptions, Version};

use super::{ffi, g, path, path_text, safe, text, to_json, RustSequenceList, R};
use crate::error::{bad_arg, Failure};

/// An open store.
pub struct RustStore(pub(super) Store);
/// A capsule.
pub struct RustCapsule(pub(super) Capsule);
/// A crate, or none.
pub struct RustCrate(Option<Crate>);
/// Options for a bump.
#[derive(Default)]
pub struct RustBumpOptions(BumpOptions);

fn section(s: ffi::Section) -> Result<capsa::Section, Failure> {
    match s {
        ffi::Section::Artifacts => Ok(capsa::Section::Artifacts),
        ffi::Section::Publishes => Ok(capsa::Section::Publishes),
        ffi::Section::Scenes => Ok(capsa::Section::Scenes),
        other => Err(bad_arg(format!("{} is not a capsa::Section", other.repr))),
    }
}

pub(super) fn store_open(p: &[u8]) -> R<Box<RustStore>> {
    g(|| Ok(Box::new(RustStore(Store::open(path(p, "path")?)?))))
}

pub(super) fn store_init(p: &[u8], padding: u32) -> R<Box<RustStore>> {
    g(|| {
        let mut options = StoreOptions::default();
        if padding != 0 {
            options.padding = padding as usize;
        }
        Ok(Box::new(RustStore(Store::init(path(p, "path")?, options)?)))
    })
}

impl RustStore {
    pub(super) fn root(&self) -> R<String> {
        g(|| path_text(self.0.root()))
    }
    pub(super) fn padding(&self) -> u32 {
        safe(0, || self.0.padding() as u32)
    }
    pub(super) fn create_capsule(&self, id: &[u8]) -> R<Box<RustCapsule>> {
        g(|| {
            Ok(Box::new(RustCapsule(
                self.0.create_capsule(text(id, "id")?)?,
            )))
        })
    }
    pub(super) fn capsule(&self, id: &[u8]) -> R<Box<RustCapsule>> {
        g(|| Ok(Box::new(RustCapsule(self.0.capsule(text(id, "id")?)?))))
    }
    pub(super) fn capsules(&self) -> R<Vec<String>> {
        g(|| {
            Ok(self
                .0
                .capsules()?
                .iter()
                .map(|c| c.id().to_string())
                .collect())
        })
    }
    pub(super) fn fsck(&self, repair: bool) -> R<usize> {
        g(|| {
            let report = self.0.fsck(repair)?;
            Ok(report.problems.iter().filter(|p| !p.repaired).count())
        })
    }
}

pub(super) fn new_bump_options() -> Box<RustBumpOptions> {
    Box::default()
}

impl RustBumpOptions {
    pub(super) fn set_comment(&mut self, comment: &[u8]) -> R<()> {
        g(|| {
            self.0.comment = Some(text(comment, "comment")?.to_owned());
            Ok(())
        })
    }
    pub(super) fn set_created_by(&mut self, who: &[u8]) -> R<()> {
        g(|| {
            self.0.created_by = Some(text(who, "created_by")?.to_owned());
            Ok(())
        })
    }
    pub(super) fn add_carry_over(&mut self, s: ffi::Section) -> R<()> {
        g(|| {
            self.0.carry_over.push(section(s)?);
            Ok(())
        })
    }
    pub(super) fn add_tag(&mut self, tag: &[u8]) -> R<()> {
        g(|| {
            self.0.tags.push(text(tag, "tag")?.to_owned());
            Ok(())
        })
    }
}

impl RustCapsule {
    pub(super) fn id(&self) -> String {
        safe(String::new(), || self.0.id().to_string())
    }
    pub(super) fn path(&self) -> R<String> {
        g(|| path_text(self.0.path()))
    }
    pub(super) fn bump(&self, options: &RustBumpOptions) -> R<Box<RustCrate>> {
        g(|| Ok(Box::new(RustCrate(Some(self.0.bump(options.0.clone())?)))))
    }
    pub(super) fn crates(&self) -> R<Vec<String>> {
        g(|| Ok(self.0.crates()?.iter().map(Crate::version_str).collect()))
    }
    pub(super) fn get(&self, version: &[u8]) -> R<Box<RustCrate>> {
        g(|| {
            let v = Version::parse(text(version, "version")?)?;
            Ok(Box::new(RustCrate(Some(self.0.get(v)?))))
        })
    }
    pub(super) fn latest(&self, published: bool) -> R<Box<RustCrate>> {
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
    pub(super) fn exists(&self) -> bool {
        self.0.is_some()
    }
    pub(super) fn version(&self) -> R<String> {
        g(|| Ok(self.get()?.version_str()))
    }
    pub(super) fn version_number(&self) -> R<u32> {
        g(|| Ok(self.get()?.version().number()))
    }
    pub(super) fn path(&self) -> R<String> {
        g(|| path_text(self.get()?.path()))
    }
    pub(super) fn section_path(&self, s: ffi::Section) -> R<String> {
        g(|| path_text(&self.get()?.section(section(s)?)))
    }
    pub(super) fn metadata_json(&self) -> R<String> {
        g(|| to_json(&self.get()?.metadata()?))
    }
    pub(super) fn is_published(&self) -> R<bool> {
        g(|| Ok(self.get()?.is_published()?))
    }
    pub(super) fn set_comment(&self, comment: &[u8]) -> R<()> {
        g(|| Ok(self.get()?.set_comment(text(comment, "comment")?)?))
    }
    pub(super) fn seal(&self) -> R<()> {
        g(|| Ok(self.get()?.seal()?))
    }
    pub(super) fn publish(&self, src: &[u8], dest: &[u8], has_dest: bool) -> R<String> {
        g(|| {
            let src = path(src, "src")?;
            let dest = has_dest.then(|| path(dest, "dest")).transpose()?;
            path_text(&self.get()?.publish(&src, dest.as_deref())?)
        })
    }
    pub(super) fn sequences(&self, s: ffi::Section) -> R<Box<RustSequenceList>> {
        g(|| {
            let list = self.get()?.sequences(section(s)?)?;
            Ok(Box::new(RustSequenceList(list)))
        })
    }
}
