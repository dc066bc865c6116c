//! `capsa serve`: the HTTP API of `capsa-server` over the store and the staging manager the
//! usual options name; `capsa serve token add/list/revoke` manage who may call it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use capsa_server::{Role, Tokens, TOKENS_ENV};
use clap::Subcommand;

use crate::staging::{self, Common};
use crate::Global;

/// `capsa serve [OPTIONS]` or `capsa serve token …`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    sub: Option<ServeSub>,
    /// A TOML file of `capsa serve` options: each key a long option without its dashes
    /// (`listen = "0.0.0.0:8270"`, `tls_cert = "…"`, `reconcile_every = "30s"`, `state = "postgres://…"`,
    /// `insecure = true`). An option on the command line wins over the file, the file over the
    /// environment.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    opts: ServeOpts,
}

/// The command line with the options of `capsa serve --config FILE` added after `serve` (those
/// the command line does not give itself); any other command line as it is.
pub fn with_config(
    mut args: Vec<std::ffi::OsString>,
    cli: &clap::Command,
) -> anyhow::Result<Vec<std::ffi::OsString>> {
    let Some(at) = args.iter().position(|a| a == "serve") else {
        return Ok(args);
    };
    let Some(c) = args[at..].iter().position(|a| a == "--config") else {
        return Ok(args);
    };
    let Some(path) = args.get(at + c + 1).map(PathBuf::from) else {
        return Ok(args);
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("--config {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "--config {}: {}",
            path.display(),
            capsa::error::one_line(&e.to_string())
        )
    })?;
    let serve = cli.find_subcommand("serve").expect("serve is a subcommand");
    let known: Vec<&str> = serve
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "config" && *l != "help")
        .collect();
    let given: Vec<String> = args
        .iter()
        .filter_map(|a| a.to_str())
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .collect();
    let mut extra: Vec<std::ffi::OsString> = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if !known.contains(&flag.as_str()) {
            anyhow::bail!(
                "--config {}: unknown key {key:?} (keys are capsa serve's long options: {})",
                path.display(),
                known.join(", ")
            );
        }
        if given.contains(&flag) {
            continue;
        }
        match value {
            toml::Value::Boolean(true) => extra.push(format!("--{flag}").into()),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => extra.extend([format!("--{flag}").into(), s.into()]),
            toml::Value::Integer(n) => {
                extra.extend([format!("--{flag}").into(), n.to_string().into()])
            }
            toml::Value::Array(items) => {
                for i in items {
                    let v = match i {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    extra.extend([format!("--{flag}").into(), v.into()]);
                }
            }
            other => anyhow::bail!(
                "--config {}: {key} = {other}: expected a string, a number, a boolean or a list",
                path.display()
            ),
        }
    }
    let tail = args.split_off(at + 1);
    args.extend(extra);
    args.extend(tail);
    Ok(args)
}

#[derive(Debug, Subcommand)]
enum ServeSub {
    /// Manage the tokens that may call the server.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
}

/// The tokens file: `--tokens FILE`, `CAPSA_SERVE_TOKENS`, else `<store>/.capsa/serve-tokens.json`.
#[derive(Debug, Clone, clap::Args)]
struct TokensFile {
    /// The tokens file (hashed tokens, mode 0600).
    #[arg(long, env = TOKENS_ENV, value_name = "FILE")]
    tokens: Option<PathBuf>,
}

impl TokensFile {
    fn open(&self, global: &Global) -> anyhow::Result<Tokens> {
        match (&self.tokens, &global.store) {
            (Some(t), _) => Ok(Tokens::at(t)),
            (None, Some(_)) => Ok(Tokens::of_store(&global.open_store()?)),
            (None, None) => anyhow::bail!(
                "no tokens file: pass --tokens FILE, set {TOKENS_ENV}, or give --store"
            ),
        }
    }
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
    /// Add a token; prints it once (only its hash is kept).
    Add {
        /// The token's name: the audit log's actor for its calls.
        name: String,
        /// `read`, `operate` or `admin`.
        #[arg(long, default_value = "read")]
        role: String,
        #[command(flatten)]
        file: TokensFile,
    },
    /// List the tokens (names, roles, dates; never a token).
    List {
        #[command(flatten)]
        file: TokensFile,
    },
    /// Revoke a token: its next call is refused.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        file: TokensFile,
    },
}

#[derive(Debug, clap::Args)]
struct ServeOpts {
    /// Address to listen on; a non-loopback one needs TLS (or --insecure).
    #[arg(long, env = "CAPSA_LISTEN", default_value = capsa_server::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM, leaf first).
    #[arg(
        long,
        env = "CAPSA_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "CAPSA_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate signed by this CA (PEM); a request
    /// without a token is then the certificate's subject common name.
    #[arg(
        long,
        env = "CAPSA_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    client_ca: Option<PathBuf>,
    /// The role of a caller identified by its client certificate.
    #[arg(long, default_value = "operate")]
    client_role: String,
    /// Serve plain HTTP on a non-loopback address.
    #[arg(long)]
    insecure: bool,
    /// Seconds a client may take to send a request head (or finish a TLS handshake).
    #[arg(long, value_name = "SECS", default_value_t = capsa_server::Limits::default().header.as_secs())]
    header_timeout: u64,
    /// Run the status updater in the server: a reconcile round this often (`30s`).
    #[arg(long, value_name = "DURATION")]
    reconcile_every: Option<String>,
    /// Let web pages of this origin (`https://tools.example:8443`) call the API from a
    /// browser (CORS); repeat, or separate with commas, for more.
    #[arg(
        long,
        env = "CAPSA_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    cors_origin: Vec<String>,
    /// The largest request body, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = capsa_server::Limits::default().body)]
    body_limit: usize,
    #[command(flatten)]
    file: TokensFile,
    #[command(flatten)]
    common: Common,
}

/// Run `capsa serve`.
pub fn run(args: ServeArgs, global: &Global) -> anyhow::Result<()> {
    match args.sub {
        Some(ServeSub::Token { cmd }) => token(cmd, global),
        None => serve(args.opts, global),
    }
}

fn token(cmd: TokenCmd, global: &Global) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Add { name, role, file } => {
            let role = Role::parse(&role).map_err(anyhow::Error::msg)?;
            let token = file.open(global)?.add(&name, role)?;
            if global.json {
                crate::output::print_json(
                    &serde_json::json!({ "name": name, "role": role, "token": token }),
                )?;
            } else {
                println!("{token}");
            }
        }
        TokenCmd::List { file } => {
            let list = file.open(global)?.list()?;
            if global.json {
                crate::output::print_json(&list)?;
            } else {
                for t in list {
                    println!(
                        "{:<24} {:<8} {}",
                        t.name,
                        t.role.as_str(),
                        t.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                }
            }
        }
        TokenCmd::Revoke { name, file } => {
            file.open(global)?.revoke(&name)?;
            println!("revoked {name}");
        }
    }
    Ok(())
}

/// The server's log on stderr: `RUST_LOG` (default `info`: one line per request, with its
/// route and status; never a header, a body or a query).
fn init_log() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,hyper=warn,kube=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

fn serve(opts: ServeOpts, global: &Global) -> anyhow::Result<()> {
    init_log();
    let tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => Some(capsa_server::Tls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: opts.client_ca.clone(),
            client_role: Role::parse(&opts.client_role).map_err(anyhow::Error::msg)?,
        }),
        _ => None,
    };
    capsa_server::check_listen(opts.listen, tls.is_some(), opts.insecure)
        .map_err(anyhow::Error::msg)?;
    if let Some(t) = &tls {
        t.config().map_err(anyhow::Error::msg)?;
    }
    let origins = capsa_server::Origins::parse(&opts.cors_origin).map_err(anyhow::Error::msg)?;
    let tokens = opts.file.open(global)?;
    let store = match &global.store {
        Some(_) => Some(global.open_store()?),
        None => None,
    };
    let every = opts
        .reconcile_every
        .as_deref()
        .map(|t| capsa::staging::parse_duration("--reconcile-every", t))
        .transpose()?;
    let stagings = staging::open_manager(&opts.common, global, every)?;
    if tokens.list()?.is_empty() {
        eprintln!(
            "warning: {} holds no token: every call will be refused (add one with `capsa serve token add NAME --role operate`)",
            tokens.path().display()
        );
    }
    let limits = capsa_server::Limits {
        body: opts.body_limit,
        header: Duration::from_secs(opts.header_timeout.max(1)),
        ..capsa_server::Limits::default()
    };
    let app = capsa_server::App::new(store, stagings.clone(), tokens).allow_origins(origins);
    let app = Arc::new(app);
    let name = capsa::runtime::block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("cannot listen on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let signal = staging::termination().context("cannot install the signal handlers")?;
        let updater = every.map(|e| stagings.spawn_reconcile_loop(e));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let shutdown = async move {
            let name = signal.await;
            let _ = tx.send(name);
        };
        // On stdout, first: tells a caller (and a test) where to connect.
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("listening on {scheme}://{addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        capsa_server::serve(listener, app, &limits, tls.as_ref(), shutdown).await?;
        if let Some(u) = updater {
            u.stop_async().await;
        }
        let flushed = stagings
            .flush_notifications_async(Duration::from_secs(5))
            .await;
        if flushed > 0 {
            eprintln!("warning: {flushed} notification(s) not delivered");
        }
        Ok::<_, anyhow::Error>(rx.await.unwrap_or("shutdown"))
    })?;
    eprintln!("{name}: server stopped");
    Ok(())
}
