//! Who may call the server: named tokens with a role, stored hashed (argon2id) in a JSON file
//! of mode 0600 that `capsa serve token add/list/revoke` manages.
//!
//! A token is `capsa_<id>_<secret>`: the id finds its entry, argon2 checks the secret once,
//! then a SHA-256 of the token is cached for the next calls. The file is read again when it
//! changes, so a revoked token stops working on its next call without a restart.
//!
//! Callers send `Authorization: Bearer TOKEN`, or (browsers, as DM's UI) HTTP Basic with the
//! token's name as user and the token as password. Behind mutual TLS (`--client-ca`), a
//! request without a token is the caller its client certificate names. `GET` needs the `read` role, every other
//! method `operate`; `admin` allows everything.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::problem::Problem;
use crate::App;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read: every `GET`.
    Read,
    /// Operate: read, and run commands (create, update, delete, restore, cleanup, bump…).
    Operate,
    /// Admin: everything.
    Admin,
}

impl Role {
    /// `read`, `operate` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
            Role::Admin => "admin",
        }
    }

    /// Parse `read`, `operate` or `admin`.
    pub fn parse(text: &str) -> Result<Role, String> {
        match text {
            "read" => Ok(Role::Read),
            "operate" => Ok(Role::Operate),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "role {:?}: expected read, operate or admin",
                capsa::error::one_line(other)
            )),
        }
    }
}

/// A token as listed: never its secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The token's name: the audit log's actor for its calls.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was added.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    name: String,
    role: Role,
    hash: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tokens: Vec<Entry>,
}

/// The caller of a request, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// The environment variable naming the tokens file.
pub const TOKENS_ENV: &str = "CAPSA_SERVE_TOKENS";

/// The tokens file's name inside a store's internal directory (`<store>/.capsa/`).
pub const TOKENS_FILE: &str = "serve-tokens.json";

/// The tokens file of a server.
pub struct Tokens {
    path: PathBuf,
    cache: Mutex<Cache>,
    /// At most this many argon2 checks at once (each takes 19 MiB and tens of milliseconds):
    /// a flood of new or wrong tokens queues instead of taking the machine's memory.
    checks: tokio::sync::Semaphore,
}

/// How many argon2 checks run at once.
const CHECKS: usize = 2;

#[derive(Default)]
struct Cache {
    modified: Option<SystemTime>,
    entries: Vec<Entry>,
    /// SHA-256 of tokens already checked → their caller.
    verified: HashMap<[u8; 32], Caller>,
}

fn bad(reason: String) -> capsa::Error {
    capsa::Error::InvalidArgument {
        what: "tokens",
        reason,
    }
}

impl Tokens {
    /// The tokens file at `path` (it need not exist yet: no token is then accepted).
    pub fn at(path: impl Into<PathBuf>) -> Tokens {
        Tokens {
            path: path.into(),
            cache: Mutex::new(Cache::default()),
            checks: tokio::sync::Semaphore::new(CHECKS),
        }
    }

    /// The default tokens file of `store`: `<store>/.capsa/serve-tokens.json`.
    pub fn of_store(store: &capsa::Store) -> Tokens {
        Tokens::at(store.internal_dir().join(TOKENS_FILE))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> capsa::Result<File> {
        match std::fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(File::default()),
            _ => {}
        }
        let bytes = capsa::safe_file::read_small(
            &self.path,
            capsa::safe_file::Links::Follow,
            1 << 20,
            "tokens file",
        )?;
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: {e}", self.path.display())))
    }

    fn write(&self, file: &File) -> capsa::Result<()> {
        let text = serde_json::to_vec_pretty(file).expect("tokens serialize");
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(capsa::Error::io_at("create", dir))?;
        }
        capsa::atomic::write_private(&self.path, &text)
    }

    /// Add a token named `name` (the audit log's actor: 1 to 64 of letters, digits, `.`,
    /// `_`, `-`, `@`) with `role`; returns the token, which is shown only this once.
    /// `AlreadyExists` when the name is taken.
    pub fn add(&self, name: &str, role: Role) -> capsa::Result<String> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if !ok {
            return Err(capsa::Error::InvalidName {
                what: "token name",
                value: capsa::error::one_line(name).into_owned(),
                rule: "1 to 64 of letters, digits, '.', '_', '-', '@'".into(),
            });
        }
        let mut file = self.read()?;
        if file.tokens.iter().any(|t| t.name == name) {
            return Err(capsa::Error::AlreadyExists {
                what: "token",
                name: name.into(),
            });
        }
        let mut id = [0u8; 6];
        let mut secret = [0u8; 24];
        OsRng.fill_bytes(&mut id);
        OsRng.fill_bytes(&mut secret);
        let (id, secret) = (hex(&id), hex(&secret));
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map_err(|e| bad(format!("hashing the token: {e}")))?
            .to_string();
        file.tokens.push(Entry {
            id: id.clone(),
            name: name.into(),
            role,
            hash,
            created_at: chrono::Utc::now(),
        });
        self.write(&file)?;
        Ok(format!("capsa_{id}_{secret}"))
    }

    /// The tokens, by name.
    pub fn list(&self) -> capsa::Result<Vec<TokenInfo>> {
        let mut v: Vec<TokenInfo> = self
            .read()?
            .tokens
            .into_iter()
            .map(|t| TokenInfo {
                name: t.name,
                role: t.role,
                created_at: t.created_at,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// Revoke the token named `name`; `NotFound` when there is none.
    pub fn revoke(&self, name: &str) -> capsa::Result<()> {
        let mut file = self.read()?;
        let before = file.tokens.len();
        file.tokens.retain(|t| t.name != name);
        if file.tokens.len() == before {
            return Err(capsa::Error::NotFound {
                what: "token",
                name: capsa::error::one_line(name).into_owned(),
            });
        }
        self.write(&file)
    }

    /// The caller a token stands for, if it is one of the file's.
    pub fn verify(&self, token: &str) -> capsa::Result<Option<Caller>> {
        Ok(match self.lookup(token)? {
            Lookup::Known(c) => Some(c),
            Lookup::Unknown => None,
            check @ Lookup::Check { .. } => self.check(token, check),
        })
    }

    /// The quick part of [`Tokens::verify`] (a look at the file's date, a SHA-256): the caller
    /// of a token verified before, an unknown token, or the hash to check it against.
    fn lookup(&self, token: &str) -> capsa::Result<Lookup> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified != cache.modified || (modified.is_none() && !cache.entries.is_empty()) {
            cache.entries = self.read()?.tokens;
            cache.modified = modified;
            cache.verified.clear();
        }
        if let Some(c) = cache.verified.get(&digest) {
            return Ok(Lookup::Known(c.clone()));
        }
        let Some((id, _)) = token
            .strip_prefix("capsa_")
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(Lookup::Unknown);
        };
        Ok(match cache.entries.iter().find(|e| e.id == id) {
            Some(entry) => Lookup::Check {
                digest,
                hash: entry.hash.clone(),
                caller: Caller {
                    name: entry.name.clone(),
                    role: entry.role,
                },
                modified,
            },
            None => Lookup::Unknown,
        })
    }

    /// The slow part: argon2 against the stored hash (tens of milliseconds, on purpose), with
    /// no lock held, so that a flood of wrong tokens does not hold up the right ones.
    fn check(&self, token: &str, lookup: Lookup) -> Option<Caller> {
        let Lookup::Check {
            digest,
            hash,
            caller,
            modified,
        } = lookup
        else {
            return None;
        };
        let (_, secret) = token.strip_prefix("capsa_")?.split_once('_')?;
        let hash = PasswordHash::new(&hash).ok()?;
        Argon2::default()
            .verify_password(secret.as_bytes(), &hash)
            .ok()?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Remembered only if the file was not changed (a revocation) meanwhile.
        if cache.modified == modified {
            cache.verified.insert(digest, caller.clone());
        }
        Some(caller)
    }
}

/// What [`Tokens::lookup`] found.
enum Lookup {
    Known(Caller),
    Unknown,
    Check {
        digest: [u8; 32],
        hash: String,
        caller: Caller,
        modified: Option<SystemTime>,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of a request: `Bearer TOKEN`, or Basic `NAME:TOKEN` (the name must be the
/// token's).
fn credentials(req: &Request) -> Option<(Option<String>, String)> {
    use base64::Engine;
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some((None, rest.trim().to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, token) = text.split_once(':')?;
        return Some((Some(user.to_string()), token.to_string()));
    }
    None
}

/// The middleware of every `/v1` route: a known token whose role allows the method; the
/// caller goes into the request's extensions for the handlers.
pub async fn require(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some((user, token)) = credentials(&req) else {
        // No token: a verified client certificate names the caller, if there is one.
        return match req.extensions().get::<crate::listen::ClientCert>().cloned() {
            Some(cert) => authorized(cert.0, req, next).await,
            None => Problem::unauthenticated("a bearer token is required").into_response(),
        };
    };
    let caller = match caller_of(&app, token).await {
        Ok(c) => c,
        Err(e) => return Problem::from(e).into_response(),
    };
    let caller = match (caller, user) {
        (Some(c), Some(u)) if c.name != u => None,
        (c, _) => c,
    };
    let Some(caller) = caller else {
        return Problem::unauthenticated("the token is not known (revoked?)").into_response();
    };
    authorized(caller, req, next).await
}

/// The caller of `token`. One seen before costs a look at the tokens file's date; a new one
/// an argon2 check on the blocking pool, at most [`CHECKS`] at once (looked up again once
/// its turn comes: a request queued behind another with the same token finds it checked).
async fn caller_of(app: &Arc<App>, token: String) -> capsa::Result<Option<Caller>> {
    let mut permit = None;
    loop {
        match app.tokens.lookup(&token)? {
            Lookup::Known(c) => return Ok(Some(c)),
            Lookup::Unknown => return Ok(None),
            check if permit.is_some() => {
                let app = app.clone();
                let checked = tokio::task::spawn_blocking(move || app.tokens.check(&token, check));
                return Ok(checked.await.unwrap_or(None));
            }
            _ => permit = app.tokens.checks.acquire().await.ok(),
        }
        if permit.is_none() {
            return Ok(None); // the semaphore is closed: never, while the server lives
        }
    }
}

/// Let `caller` through if its role allows the method.
async fn authorized(caller: Caller, mut req: Request, next: Next) -> Response {
    let needed = if matches!(*req.method(), Method::GET | Method::HEAD) {
        Role::Read
    } else {
        Role::Operate
    };
    if caller.role < needed {
        return Problem::forbidden(format!(
            "token {} has the role {}; {} {} needs {}",
            caller.name,
            caller.role.as_str(),
            req.method(),
            req.uri().path(),
            needed.as_str()
        ))
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_revoke() {
        let dir = std::env::temp_dir().join(format!("capsa-tokens-{}", std::process::id()));
        let t = Tokens::at(dir.join("tokens.json"));
        let token = t.add("ci", Role::Read).unwrap();
        assert!(t.add("ci", Role::Admin).is_err());
        assert!(t.add("bad name", Role::Admin).is_err());
        let c = t.verify(&token).unwrap().unwrap();
        assert_eq!((c.name.as_str(), c.role), ("ci", Role::Read));
        assert!(t.verify(&format!("{token}x")).unwrap().is_none());
        assert!(t.verify("capsa_00_11").unwrap().is_none());
        let text = std::fs::read_to_string(t.path()).unwrap();
        assert!(!text.contains(token.rsplit('_').next().unwrap()));
        t.revoke("ci").unwrap();
        assert!(t.verify(&token).unwrap().is_none());
        assert!(t.revoke("ci").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
