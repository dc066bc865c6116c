//! Printing results and errors.

use std::process::ExitCode;

use capsa::error::one_line;
use serde::Serialize;

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Print an error as one line on stderr and turn it into the process exit code.
///
/// A capsa error exits with `10 + code number` so scripts can tell errors apart; anything
/// else (bad usage caught late, JSON encoding) exits with 1.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    match err.downcast_ref::<capsa::Error>() {
        Some(e) => {
            eprintln!("capsa: error [{}]: {}", e.code(), one_line(&e.to_string()));
            ExitCode::from((10 + e.code().number()).min(255) as u8)
        }
        None => {
            eprintln!("capsa: error: {}", one_line(&format!("{err:#}")));
            ExitCode::from(1)
        }
    }
}
