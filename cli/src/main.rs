//! `capsa`: the command line over the capsa library.
//!
//! Every subcommand is a thin call into core. Errors print one line to stderr and exit with a
//! code derived from the error's stable [`capsa::ErrorCode`] (`10 + number`).

mod archive;
mod output;
mod remote;
mod serve;
mod staging;
mod storage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Global options shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Store root directory.
    #[arg(long, global = true, env = "CAPSA_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// The capsa server of the remote mode, if any.
    #[command(flatten)]
    pub server: remote::ServerArgs,
}

impl Global {
    /// The store directory, or a clear error when neither `--store` nor `CAPSA_STORE` is set.
    pub fn store_dir(&self) -> anyhow::Result<&PathBuf> {
        self.store
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no store given: pass --store DIR or set CAPSA_STORE"))
    }

    /// Open the store.
    pub fn open_store(&self) -> anyhow::Result<capsa::Store> {
        Ok(capsa::Store::open(self.store_dir()?)?)
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "capsa",
    version,
    about = "Show storage as Capsules and Crates, archives and stagings"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Storage(storage::StorageCommand),
    /// Staging lifecycle: create, update, delete, restore, cleanup, reconcile, watch.
    Staging {
        // Boxed: the staging options are much larger than the storage commands.
        #[command(subcommand)]
        cmd: Box<staging::StagingCommand>,
    },
    #[command(flatten)]
    Archive(archive::ArchiveCommand),
    /// The HTTP API (`capsa serve`), and its tokens (`capsa serve token add|list|revoke`).
    Serve(Box<serve::ServeArgs>),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Storage(cmd) => storage::run(cmd, &cli.global),
        Command::Staging { cmd } => staging::run(*cmd, &cli.global),
        Command::Archive(cmd) => archive::run(cmd, &cli.global),
        Command::Serve(args) => serve::run(*args, &cli.global),
    }
}

fn main() -> ExitCode {
    let args = match serve::with_config(std::env::args_os().collect(), &Cli::command()) {
        Ok(a) => a,
        Err(e) => return output::report_error(&e),
    };
    let cli = Cli::parse_from(args);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::report_error(&e),
    }
}
