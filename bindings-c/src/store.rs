//! Stores, capsules and crates: open/init, capsules, bump, latest, publish, seal.

use std::ffi::c_char;
use std::ptr::null_mut;

use capsa::{BumpOptions, Capsule, Crate, Section, Store, StoreOptions, Version};

use crate::error::{bad_arg, capsa_status, guard, Failure};
use crate::seq::capsa_sequence_list;
use crate::strings::{
    capsa_string_list, free_box, handle, opt_str_arg, out_param, owned, owned_path, path_arg,
    str_arg, with_out,
};

/// An open store (a root directory with `.capsa/store.toml`). Thread-safe: one handle may be
/// used from several threads at once.
pub struct capsa_store {
    pub(crate) inner: Store,
}

/// A capsule of a store. Independent of the store handle it came from: it stays valid after
/// that handle is freed.
pub struct capsa_capsule {
    pub(crate) inner: Capsule,
}

/// A crate (`v001`, …) of a capsule. Independent of the capsule and store handles.
pub struct capsa_crate {
    pub(crate) inner: Crate,
}

/// One of the three sections of every crate.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum capsa_section {
    /// `artifacts/`: work files and renders.
    Artifacts = 0,
    /// `publishes/`: released, read-only files.
    Publishes = 1,
    /// `scenes/`: DCC scene files.
    Scenes = 2,
}

/// The core section for a C value, refusing unknown numbers.
pub fn section_arg(value: u32) -> Result<Section, Failure> {
    match value {
        0 => Ok(Section::Artifacts),
        1 => Ok(Section::Publishes),
        2 => Ok(Section::Scenes),
        n => Err(bad_arg(format!("{n} is not a capsa_section"))),
    }
}

/// Options for [`capsa_capsule_bump`]. Every field may be NULL / 0; zero-initialise it
/// (`capsa_bump_options o = {0};`) and set what you need.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct capsa_bump_options {
    /// A comment for the new crate's metadata (UTF-8), or NULL.
    pub comment: *const c_char,
    /// Who creates it (UTF-8); NULL means the current user.
    pub created_by: *const c_char,
    /// Sections (`capsa_section` values) whose files are carried over from the previous crate.
    pub carry_over: *const u32,
    /// The number of entries in `carry_over`.
    pub carry_over_len: usize,
    /// Tags (UTF-8 strings) for the metadata.
    pub tags: *const *const c_char,
    /// The number of entries in `tags`.
    pub tags_len: usize,
}

fn boxed<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Open an existing store at `path`.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_open(
    path: *const c_char,
    out: *mut *mut capsa_store,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let path = unsafe { path_arg(path, "path") }?;
        Ok(boxed(capsa_store {
            inner: Store::open(path)?,
        }))
    })
}

/// Create a new store at `path` (the directory may exist but must not be a store yet).
/// `padding` is the number of digits of crate versions; 0 means the default (3).
///
/// # Safety
/// As [`capsa_store_open`].
#[no_mangle]
pub unsafe extern "C" fn capsa_store_init(
    path: *const c_char,
    padding: u32,
    out: *mut *mut capsa_store,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let path = unsafe { path_arg(path, "path") }?;
        let mut options = StoreOptions::default();
        if padding != 0 {
            options.padding = padding as usize;
        }
        Ok(boxed(capsa_store {
            inner: Store::init(path, options)?,
        }))
    })
}

/// Free a store handle. NULL is ignored. Capsules and crates obtained from it stay valid.
///
/// # Safety
/// `store` is NULL or a live store handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_free(store: *mut capsa_store) {
    free_box(store);
}

/// The store's root directory, as an owned string (free with `capsa_string_free`).
///
/// # Safety
/// `store` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_root(
    store: *const capsa_store,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let store = unsafe { handle(store, "store") }?;
        owned_path(store.inner.root())
    })
}

/// The number of digits crate versions are padded to in this store.
///
/// # Safety
/// `store` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_padding(
    store: *const capsa_store,
    out: *mut u32,
) -> capsa_status {
    with_out(out, 0, || {
        // SAFETY: per the contract.
        let store = unsafe { handle(store, "store") }?;
        Ok(store.inner.padding() as u32)
    })
}

/// Create a capsule named `id` (a 24-hex ObjectId, a UUID or a slug).
///
/// # Safety
/// `store` is NULL or live; `id` is NULL or a string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_create_capsule(
    store: *const capsa_store,
    id: *const c_char,
    out: *mut *mut capsa_capsule,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let (store, id) = unsafe { (handle(store, "store")?, str_arg(id, "id")?) };
        Ok(boxed(capsa_capsule {
            inner: store.inner.create_capsule(id)?,
        }))
    })
}

/// Open the existing capsule `id` (`CAPSA_STATUS_NOT_FOUND` when there is none).
///
/// # Safety
/// As [`capsa_store_create_capsule`].
#[no_mangle]
pub unsafe extern "C" fn capsa_store_capsule(
    store: *const capsa_store,
    id: *const c_char,
    out: *mut *mut capsa_capsule,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let (store, id) = unsafe { (handle(store, "store")?, str_arg(id, "id")?) };
        Ok(boxed(capsa_capsule {
            inner: store.inner.capsule(id)?,
        }))
    })
}

/// The ids of every capsule in the store, sorted.
///
/// # Safety
/// `store` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_capsules(
    store: *const capsa_store,
    out: *mut *mut capsa_string_list,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let store = unsafe { handle(store, "store") }?;
        let ids = store.inner.capsules()?;
        capsa_string_list::boxed(ids.iter().map(|c| c.id().to_string()))
    })
}

/// Check the store for what a crash left behind; with `repair`, mend it. `problems` receives
/// the number of problems that remain.
///
/// # Safety
/// `store` is NULL or live; `problems` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_store_fsck(
    store: *const capsa_store,
    repair: bool,
    problems: *mut usize,
) -> capsa_status {
    with_out(problems, 0, || {
        // SAFETY: per the contract.
        let store = unsafe { handle(store, "store") }?;
        let report = store.inner.fsck(repair)?;
        Ok(report.problems.iter().filter(|p| !p.repaired).count())
    })
}

/// Free a capsule handle. NULL is ignored.
///
/// # Safety
/// `capsule` is NULL or a live capsule handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_free(capsule: *mut capsa_capsule) {
    free_box(capsule);
}

/// The capsule's id (owned string).
///
/// # Safety
/// `capsule` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_id(
    capsule: *const capsa_capsule,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        owned(capsule.inner.id().as_str())
    })
}

/// The capsule's directory (owned string).
///
/// # Safety
/// `capsule` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_path(
    capsule: *const capsa_capsule,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        owned_path(capsule.inner.path())
    })
}

/// Allocate the next crate of the capsule (safe with any number of concurrent writers).
/// `options` may be NULL for the defaults.
///
/// # Safety
/// `capsule` is NULL or live; `options` is NULL or a valid struct whose pointers are valid;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_bump(
    capsule: *const capsa_capsule,
    options: *const capsa_bump_options,
    out: *mut *mut capsa_crate,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        let mut bump = BumpOptions::default();
        // SAFETY: per the contract.
        if let Some(o) = unsafe { options.as_ref() } {
            // SAFETY: the struct's pointers are valid per the contract.
            unsafe {
                bump.comment = opt_str_arg(o.comment, "options.comment")?.map(str::to_owned);
                bump.created_by =
                    opt_str_arg(o.created_by, "options.created_by")?.map(str::to_owned);
                bump.tags = crate::strings::str_array(o.tags, o.tags_len, "options.tags")?
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if o.carry_over_len > 0 {
                    if o.carry_over.is_null() {
                        return Err(bad_arg(
                            "`options.carry_over` is NULL but its length is not 0",
                        ));
                    }
                    bump.carry_over = std::slice::from_raw_parts(o.carry_over, o.carry_over_len)
                        .iter()
                        .map(|s| section_arg(*s))
                        .collect::<Result<_, _>>()?;
                }
            }
        }
        Ok(boxed(capsa_crate {
            inner: capsule.inner.bump(bump)?,
        }))
    })
}

/// The versions of the capsule's complete crates, ascending (`"v001"`, `"v002"`, …).
///
/// # Safety
/// `capsule` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_crates(
    capsule: *const capsa_capsule,
    out: *mut *mut capsa_string_list,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        let crates = capsule.inner.crates()?;
        capsa_string_list::boxed(crates.iter().map(Crate::version_str))
    })
}

/// The crate `version` (any width: `"v2"` finds `v002`).
///
/// # Safety
/// `capsule` is NULL or live; `version` is NULL or a string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_get(
    capsule: *const capsa_capsule,
    version: *const c_char,
    out: *mut *mut capsa_crate,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let (capsule, version) =
            unsafe { (handle(capsule, "capsule")?, str_arg(version, "version")?) };
        let version = Version::parse(version)?;
        Ok(boxed(capsa_crate {
            inner: capsule.inner.get(version)?,
        }))
    })
}

/// The latest crate (with `published`, the latest sealed one). Succeeds with `*out == NULL`
/// when there is none.
///
/// # Safety
/// `capsule` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_capsule_latest(
    capsule: *const capsa_capsule,
    published: bool,
    out: *mut *mut capsa_crate,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let capsule = unsafe { handle(capsule, "capsule") }?;
        let latest = if published {
            capsule.inner.latest_published()?
        } else {
            capsule.inner.latest()?
        };
        Ok(latest.map_or(null_mut(), |k| boxed(capsa_crate { inner: k })))
    })
}

/// Free a crate handle. NULL is ignored.
///
/// # Safety
/// `krate` is NULL or a live crate handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_free(krate: *mut capsa_crate) {
    free_box(krate);
}

/// The crate's version text at the store's padding (`"v003"`).
///
/// # Safety
/// `krate` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_version(
    krate: *const capsa_crate,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        owned(krate.inner.version_str())
    })
}

/// The crate's version number (3 for `v003`).
///
/// # Safety
/// `krate` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_version_number(
    krate: *const capsa_crate,
    out: *mut u32,
) -> capsa_status {
    with_out(out, 0, || {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        Ok(krate.inner.version().number())
    })
}

/// The crate's directory (owned string).
///
/// # Safety
/// `krate` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_path(
    krate: *const capsa_crate,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        owned_path(krate.inner.path())
    })
}

/// The directory of one section of the crate (owned string).
///
/// # Safety
/// `krate` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_section_path(
    krate: *const capsa_crate,
    section: u32,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        owned_path(&krate.inner.section(section_arg(section)?))
    })
}

/// The crate's metadata as a JSON object (owned string): `version`, `created_by`,
/// `created_at`, `comment`, `parent`, `tags`, `published`, `published_at`, `schema`.
///
/// # Safety
/// `krate` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_metadata_json(
    krate: *const capsa_crate,
    out: *mut *mut c_char,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        let meta = krate.inner.metadata()?;
        let text = serde_json::to_string(&meta)
            .map_err(|e| bad_arg(format!("metadata does not serialise: {e}")))?;
        owned(text)
    })
}

/// Whether the crate is sealed (published).
///
/// # Safety
/// `krate` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_is_published(
    krate: *const capsa_crate,
    out: *mut bool,
) -> capsa_status {
    with_out(out, false, || {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        Ok(krate.inner.is_published()?)
    })
}

/// Replace the crate's comment (refused with `CAPSA_STATUS_SEALED` once sealed).
///
/// # Safety
/// `krate` is NULL or live; `comment` is NULL or a string.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_set_comment(
    krate: *const capsa_crate,
    comment: *const c_char,
) -> capsa_status {
    guard(|| {
        // SAFETY: per the contract.
        let (krate, comment) = unsafe { (handle(krate, "krate")?, str_arg(comment, "comment")?) };
        Ok(krate.inner.set_comment(comment)?)
    })
}

/// Seal the crate: it becomes published and refuses further writes.
///
/// # Safety
/// `krate` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_seal(krate: *const capsa_crate) -> capsa_status {
    guard(|| {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        Ok(krate.inner.seal()?)
    })
}

/// Publish a file, or a whole frame sequence (`/renders/plate.####.exr`), into the crate's
/// `publishes/`, atomically and read-only. `dest` is a path relative to `publishes/`, or NULL
/// for the default place. `out_path` (may be NULL) receives where it landed.
///
/// # Safety
/// `krate` is NULL or live; `src`, `dest` are NULL or strings; `out_path` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_publish(
    krate: *const capsa_crate,
    src: *const c_char,
    dest: *const c_char,
    out_path: *mut *mut c_char,
) -> capsa_status {
    guard(|| {
        // SAFETY: per the contract.
        let slot = if out_path.is_null() {
            None
        } else {
            Some(unsafe { out_param(out_path, "out_path", null_mut()) }?)
        };
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        // SAFETY: per the contract.
        let src = unsafe { path_arg(src, "src") }?;
        let dest = if dest.is_null() {
            None
        } else {
            // SAFETY: per the contract.
            Some(unsafe { path_arg(dest, "dest") }?)
        };
        let landed = krate.inner.publish(&src, dest.as_deref())?;
        if let Some(slot) = slot {
            *slot = owned_path(&landed)?;
        }
        Ok(())
    })
}

/// The frame sequences (and single files) in one section of the crate.
///
/// # Safety
/// `krate` is NULL or live; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn capsa_crate_sequences(
    krate: *const capsa_crate,
    section: u32,
    out: *mut *mut capsa_sequence_list,
) -> capsa_status {
    with_out(out, null_mut(), || {
        // SAFETY: per the contract.
        let krate = unsafe { handle(krate, "krate") }?;
        let seqs = krate.inner.sequences(section_arg(section)?)?;
        Ok(capsa_sequence_list::boxed(seqs))
    })
}
