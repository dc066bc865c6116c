//! Stores and capsules. Every call that touches the disk returns a Promise; its work runs on
//! the blocking threads of core's runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::Env;
use napi_derive::napi;

use crate::archive::{offline_stub_promise, restore_promise, take_offline_promise};
use crate::error::{guard, padding_arg, promise_blocking, version_arg, Failure};
use crate::krate::JsCrate;

/// Whether a store was closed: shared by the store and every capsule and crate reached
/// through it, which all refuse to touch the disk once it is.
#[derive(Clone, Default)]
pub(crate) struct OpenFlag(Arc<AtomicBool>);

impl OpenFlag {
    /// A Promise of `job`, a blocking core call, on the blocking threads of core's runtime;
    /// once the store is closed it rejects with `INVALID_ARGUMENT` ([`capsa::Error::closed`]).
    pub(crate) fn promise<'e, T: ToNapiValue + Send + 'static>(
        &self,
        env: &'e Env,
        job: impl FnOnce() -> capsa::Result<T> + Send + 'static,
    ) -> Result<Object<'e>, Failure> {
        let closed = self.is_closed();
        promise_blocking(env, move || match closed {
            true => Err(capsa::Error::closed("store")),
            false => job(),
        })
    }

    fn is_closed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

fn path_text(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Options of `Store.init`.
#[napi(object)]
pub struct StoreInitOptions {
    /// Digits of crate version numbers (3 by default: `v001`).
    pub padding: Option<i64>,
    /// Default archive policy: `'auto'` (the default), `'store'` or `'deflate'`.
    #[napi(ts_type = "'auto' | 'store' | 'deflate'")]
    pub archive_policy: Option<String>,
}

/// Options of `capsule.bump`.
#[napi(object)]
pub struct BumpOptions {
    /// A free-form comment.
    pub comment: Option<String>,
    /// Sections whose files the new crate brings over from the previous one.
    #[napi(ts_type = "Array<'artifacts' | 'publishes' | 'scenes'>")]
    pub carry_over: Option<Vec<String>>,
    /// Who makes the crate (the user name when not given).
    pub created_by: Option<String>,
    /// Free-form tags.
    pub tags: Option<Vec<String>>,
}

/// Options of `capsule.latest`.
#[napi(object)]
pub struct LatestOptions {
    /// Only sealed (published) crates.
    pub published: Option<bool>,
}

/// One finding of `store.fsck`.
#[napi(object)]
pub struct FsckProblem {
    /// The kind (`incomplete_crate`, `stale_temp`, …).
    pub kind: String,
    /// The path concerned.
    pub path: String,
    /// What is wrong.
    pub detail: String,
    /// Whether it was repaired.
    pub repaired: bool,
}

/// The result of `store.fsck`.
#[napi(object)]
pub struct FsckReport {
    /// Capsules checked.
    pub capsules: u32,
    /// Crates checked.
    pub crates: u32,
    /// What was found.
    pub problems: Vec<FsckProblem>,
    /// No problem left unrepaired.
    pub clean: bool,
}

/// A capsa store: a root directory with `.capsa/store.toml`.
#[napi(js_name = "Store")]
pub struct JsStore {
    pub(crate) inner: capsa::Store,
    pub(crate) open: OpenFlag,
}

impl JsStore {
    fn new(inner: capsa::Store) -> Self {
        let open = OpenFlag::default();
        JsStore { inner, open }
    }

    /// The capsules' wrapper: each shares this store's [`OpenFlag`].
    pub(crate) fn capsule_of(&self) -> impl Fn(capsa::Capsule) -> JsCapsule {
        let open = self.open.clone();
        move |inner| JsCapsule::new(inner, open.clone())
    }
}

#[napi]
impl JsStore {
    /// Create a store at `path` (rejects with `ALREADY_EXISTS` if it is one already).
    #[napi(ts_return_type = "Promise<Store>")]
    pub fn init<'e>(
        env: &'e Env,
        path: String,
        options: Option<StoreInitOptions>,
    ) -> napi::Result<Object<'e>> {
        guard(env, || {
            promise_blocking(env, move || {
                let mut opts = capsa::StoreOptions::default();
                if let Some(o) = options {
                    opts.padding = padding_arg(o.padding)?;
                    if let Some(policy) = o.archive_policy {
                        opts.archive_policy = policy;
                    }
                }
                capsa::Store::init(&path, opts).map(JsStore::new)
            })
        })
    }

    /// Open the store at `path` (rejects with `INVALID_STORE` if it is none).
    #[napi(ts_return_type = "Promise<Store>")]
    pub fn open<'e>(env: &'e Env, path: String) -> napi::Result<Object<'e>> {
        guard(env, || {
            promise_blocking(env, move || capsa::Store::open(&path).map(JsStore::new))
        })
    }

    /// The root directory.
    #[napi(getter)]
    pub fn root(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(path_text(self.inner.root())))
    }

    /// Digits of crate version numbers.
    #[napi(getter)]
    pub fn padding(&self, env: Env) -> napi::Result<u32> {
        guard(&env, || Ok(self.inner.padding() as u32))
    }

    /// Close the store: it and every capsule and crate reached through it reject later
    /// calls with `INVALID_ARGUMENT` ("… it is closed"). Closing twice is harmless.
    #[napi]
    pub fn close(&self, env: Env) -> napi::Result<()> {
        guard(&env, || {
            self.open.0.store(true, Ordering::SeqCst);
            Ok(())
        })
    }

    /// Whether `close` was called.
    #[napi(getter)]
    pub fn closed(&self, env: Env) -> napi::Result<bool> {
        guard(&env, || Ok(self.open.is_closed()))
    }

    /// Create a capsule (`ALREADY_EXISTS`, `INVALID_NAME`).
    #[napi(ts_return_type = "Promise<Capsule>")]
    pub fn create_capsule<'e>(&self, env: &'e Env, id: String) -> napi::Result<Object<'e>> {
        let (store, wrap) = (self.inner.clone(), self.capsule_of());
        guard(env, || {
            self.open
                .promise(env, move || store.create_capsule(&id).map(wrap))
        })
    }

    /// An existing capsule (`NOT_FOUND`, `INVALID_NAME`).
    #[napi(ts_return_type = "Promise<Capsule>")]
    pub fn capsule<'e>(&self, env: &'e Env, id: String) -> napi::Result<Object<'e>> {
        let (store, wrap) = (self.inner.clone(), self.capsule_of());
        guard(env, || {
            self.open.promise(env, move || store.capsule(&id).map(wrap))
        })
    }

    /// Every capsule, sorted by id.
    #[napi(ts_return_type = "Promise<Array<Capsule>>")]
    pub fn capsules<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (store, wrap) = (self.inner.clone(), self.capsule_of());
        guard(env, || {
            self.open.promise(env, move || {
                store
                    .capsules()
                    .map(|v| v.into_iter().map(wrap).collect::<Vec<_>>())
            })
        })
    }

    /// Restore an archive into this store; resolves to the capsule. Refuses an existing
    /// capsule with `ALREADY_EXISTS` unless `replace`; hostile entries (absolute paths, `..`,
    /// escaping symlinks, zip bombs) are refused before anything is written. Cancelled by
    /// `signal` with `CANCELLED`, leaving nothing behind.
    #[napi(
        ts_args_type = "path: string, options?: { replace?: boolean, onProgress?: (progress: Progress) => void, signal?: AbortSignal }",
        ts_return_type = "Promise<Capsule>"
    )]
    pub fn restore<'e>(
        &self,
        env: &'e Env,
        path: String,
        options: Option<Object>,
    ) -> napi::Result<Object<'e>> {
        guard(env, || restore_promise(env, self, path, options))
    }

    /// Bring an offline capsule back from its recorded archive (`NOT_FOUND` if the archive
    /// is gone, `CORRUPT` if it changed).
    #[napi(ts_return_type = "Promise<Capsule>")]
    pub fn retrieve<'e>(&self, env: &'e Env, id: String) -> napi::Result<Object<'e>> {
        let (store, wrap) = (self.inner.clone(), self.capsule_of());
        guard(env, || {
            self.open
                .promise(env, move || store.retrieve(&id).map(wrap))
        })
    }

    /// Check the store for what a crash left behind; `repair` mends what it can.
    #[napi(ts_return_type = "Promise<FsckReport>")]
    pub fn fsck<'e>(&self, env: &'e Env, repair: Option<bool>) -> napi::Result<Object<'e>> {
        let store = self.inner.clone();
        guard(env, || {
            self.open.promise(env, move || {
                let report = store.fsck(repair.unwrap_or(false))?;
                let clean = report.is_clean();
                Ok(FsckReport {
                    capsules: report.capsules as u32,
                    crates: report.crates as u32,
                    problems: report
                        .problems
                        .into_iter()
                        .map(|p| FsckProblem {
                            kind: serde_kind(p.kind),
                            path: path_text(&p.path),
                            detail: p.detail,
                            repaired: p.repaired,
                        })
                        .collect(),
                    clean,
                })
            })
        })
    }
}

fn serde_kind(kind: capsa::ProblemKind) -> String {
    // The snake_case name core serialises (`incomplete_crate`), as the CLI prints it.
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A capsule: one directory per project-management entry, holding crates.
#[napi(js_name = "Capsule")]
pub struct JsCapsule {
    pub(crate) inner: capsa::Capsule,
    pub(crate) open: OpenFlag,
}

impl JsCapsule {
    fn new(inner: capsa::Capsule, open: OpenFlag) -> Self {
        JsCapsule { inner, open }
    }

    fn crate_of(&self) -> impl Fn(capsa::Crate) -> JsCrate {
        let open = self.open.clone();
        move |inner| JsCrate::new(inner, open.clone())
    }
}

#[napi]
impl JsCapsule {
    /// The capsule id.
    #[napi(getter)]
    pub fn id(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(self.inner.id().to_string()))
    }

    /// The capsule directory.
    #[napi(getter)]
    pub fn path(&self, env: Env) -> napi::Result<String> {
        guard(&env, || Ok(path_text(self.inner.path())))
    }

    /// Take the capsule offline: verify `archive`, check it holds this capsule's current
    /// tree, leave a stub pointing at it and remove the content. Resolves to the stub.
    #[napi(ts_return_type = "Promise<OfflineStub>")]
    pub fn take_offline<'e>(&self, env: &'e Env, archive: String) -> napi::Result<Object<'e>> {
        guard(env, || take_offline_promise(env, self, archive))
    }

    /// Is the capsule offline (its content in an archive)?
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn is_offline<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let capsule = self.inner.clone();
        guard(env, || {
            self.open.promise(env, move || Ok(capsule.is_offline()))
        })
    }

    /// The offline stub (where the archive is, its SHA-256 and sizes), or `null` when the
    /// capsule is online.
    #[napi(ts_return_type = "Promise<OfflineStub | null>")]
    pub fn offline_stub<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        guard(env, || offline_stub_promise(env, self))
    }

    /// Allocate the next crate (safe with concurrent writers); `carryOver` brings files of
    /// the previous crate's sections over.
    #[napi(ts_return_type = "Promise<Crate>")]
    pub fn bump<'e>(&self, env: &'e Env, options: Option<BumpOptions>) -> napi::Result<Object<'e>> {
        let (capsule, wrap) = (self.inner.clone(), self.crate_of());
        guard(env, || {
            self.open.promise(env, move || {
                let o = options.unwrap_or(BumpOptions {
                    comment: None,
                    carry_over: None,
                    created_by: None,
                    tags: None,
                });
                let carry_over = o
                    .carry_over
                    .unwrap_or_default()
                    .iter()
                    .map(|s| s.parse::<capsa::Section>())
                    .collect::<capsa::Result<Vec<_>>>()?;
                capsule
                    .bump(capsa::BumpOptions {
                        comment: o.comment,
                        carry_over,
                        created_by: o.created_by,
                        tags: o.tags.unwrap_or_default(),
                    })
                    .map(wrap)
            })
        })
    }

    /// Every complete crate, oldest first.
    #[napi(ts_return_type = "Promise<Array<Crate>>")]
    pub fn crates<'e>(&self, env: &'e Env) -> napi::Result<Object<'e>> {
        let (capsule, wrap) = (self.inner.clone(), self.crate_of());
        guard(env, || {
            self.open.promise(env, move || {
                capsule
                    .crates()
                    .map(|v| v.into_iter().map(wrap).collect::<Vec<_>>())
            })
        })
    }

    /// A crate by version (`'v002'`, any width, or its number); `NOT_FOUND` if absent.
    #[napi(ts_return_type = "Promise<Crate>")]
    pub fn get<'e>(
        &self,
        env: &'e Env,
        #[napi(ts_arg_type = "string | number")] version: napi::Either<String, i64>,
    ) -> napi::Result<Object<'e>> {
        let (capsule, wrap) = (self.inner.clone(), self.crate_of());
        guard(env, || {
            self.open.promise(env, move || {
                let v = match version {
                    napi::Either::A(text) => capsa::Version::parse(&text)?,
                    napi::Either::B(n) => version_arg(n)?,
                };
                capsule.get(v).map(wrap)
            })
        })
    }

    /// The newest crate (`{ published: true }`: the newest sealed one), or `null`.
    #[napi(ts_return_type = "Promise<Crate | null>")]
    pub fn latest<'e>(
        &self,
        env: &'e Env,
        options: Option<LatestOptions>,
    ) -> napi::Result<Object<'e>> {
        let (capsule, wrap) = (self.inner.clone(), self.crate_of());
        let published = options.and_then(|o| o.published).unwrap_or(false);
        guard(env, || {
            self.open.promise(env, move || {
                let found = if published {
                    capsule.latest_published()?
                } else {
                    capsule.latest()?
                };
                Ok(found.map(wrap))
            })
        })
    }
}
