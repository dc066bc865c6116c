//! The stored form of a staging, shared by both state stores: times as milliseconds, overrides
//! as JSON with private values sealed ([`super::sealed`]), audit overrides masked, and the
//! statements the [`ledger`](super::ledger) writes, rendered once for both SQL dialects (they
//! differ here only in the parameter mark: `?1` for SQLite, `$1` for PostgreSQL).

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::sealed::{self, SealKey};
use super::{Override, Scope, Secret, Visibility};
use crate::error::{Error, Result};

/// A time as stored: milliseconds since the Unix epoch.
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time back (the epoch for one out of range).
pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
struct StoredOverride {
    key: String,
    value: String,
    scope: Scope,
    visibility: Visibility,
}

/// Overrides in their stored form: JSON, each private value sealed with `key`.
///
/// Errors: `InvalidArgument` when there is a private value and no key (a PostgreSQL store
/// opened without a key file).
pub(crate) fn encode_overrides(o: &[Override], key: Option<&SealKey>) -> Result<String> {
    let v = o
        .iter()
        .map(|o| {
            let value = match o.visibility {
                Visibility::Public => o.value.expose().to_string(),
                Visibility::Private => match key {
                    Some(k) => k.seal(&o.key, o.value.expose()),
                    None => return Err(no_key_file("store the private value of", &o.key)),
                },
            };
            Ok(StoredOverride {
                key: o.key.clone(),
                value,
                scope: o.scope,
                visibility: o.visibility,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::to_string(&v).expect("overrides encode"))
}

fn no_key_file(doing: &str, key: &str) -> Error {
    Error::InvalidArgument {
        what: "key file",
        reason: format!(
            "cannot {doing} override {key:?}: private values are stored sealed and this state \
             store has no key file (pass --key-file FILE or set {})",
            sealed::KEY_FILE_ENV
        ),
    }
}

fn parse_stored(s: &str, place: &Path) -> Result<Vec<StoredOverride>> {
    serde_json::from_str::<Vec<StoredOverride>>(s)
        .map_err(|e| Error::corrupt(place, format!("stored overrides do not parse: {e}")))
}

/// Overrides from their stored form, private values opened with `key`. A private value stored
/// in clear by an earlier build is taken as it is (and sealed when the staging is next
/// written).
///
/// Errors: `Corrupt` (the JSON does not parse), `InvalidArgument` naming the key file (a
/// sealed value that does not open with `key`, or no key at all).
pub(crate) fn decode_overrides(
    s: &str,
    key: Option<&SealKey>,
    place: &Path,
) -> Result<Vec<Override>> {
    parse_stored(s, place)?
        .into_iter()
        .map(|o| {
            let value = if o.visibility == Visibility::Private && sealed::is_sealed(&o.value) {
                match key {
                    Some(k) => k.open(&o.key, &o.value)?,
                    None => return Err(no_key_file("read the private value of", &o.key)),
                }
            } else {
                o.value
            };
            Ok(Override {
                key: o.key,
                value: Secret::new(value),
                scope: o.scope,
                visibility: o.visibility,
            })
        })
        .collect()
}

/// Overrides from their stored form for the audit log only: private values are never opened
/// (they are masked there anyway), so no key is needed.
pub(crate) fn decode_overrides_masked(s: &str, place: &Path) -> Result<Vec<Override>> {
    Ok(parse_stored(s, place)?
        .into_iter()
        .map(|o| {
            let value = match o.visibility {
                Visibility::Public => o.value,
                Visibility::Private => super::MASK.to_string(),
            };
            Override {
                key: o.key,
                value: Secret::new(value),
                scope: o.scope,
                visibility: o.visibility,
            }
        })
        .collect())
}

/// Overrides as masked `scope:KEY=VALUE` strings for the audit log.
pub(crate) fn masked_overrides(o: &[Override]) -> String {
    let v: Vec<String> = o
        .iter()
        .map(|o| {
            let scope = match o.scope {
                Scope::App => "app",
                Scope::Staging => "staging",
            };
            format!("{scope}:{}={}", o.key, o.shown_value())
        })
        .collect();
    serde_json::to_string(&v).expect("strings encode")
}

/// One column value of a statement. In a condition, a `None` value means `IS NULL`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    /// A `TEXT` column.
    Text(Option<String>),
    /// A `BIGINT` column (SQLite: `INTEGER`).
    Int(Option<i64>),
    /// An `INTEGER` column (32 bits in PostgreSQL).
    Int32(Option<i32>),
    /// In a `SET` only: the milliseconds from the row's `started_at` to this time (an audit
    /// row's duration).
    SinceStart(i64),
}

impl Cell {
    /// A text value.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(Some(s.into()))
    }
    /// An optional text value.
    pub fn opt_text(s: Option<&str>) -> Cell {
        Cell::Text(s.map(str::to_string))
    }
    /// A time, stored as milliseconds.
    pub fn time(t: DateTime<Utc>) -> Cell {
        Cell::Int(Some(ms(t)))
    }
}

/// Named column values.
pub(crate) type Cells = Vec<(&'static str, Cell)>;

/// A statement with its parameters, in a dialect whose parameters are `{mark}1`, `{mark}2`, …
#[derive(Debug)]
pub(crate) struct Stmt {
    /// The SQL text.
    pub sql: String,
    /// The parameters, in order.
    pub params: Vec<Cell>,
}

impl Stmt {
    fn push(&mut self, mark: char, cell: Cell) -> String {
        self.params.push(cell);
        format!("{mark}{}", self.params.len())
    }

    fn conditions(&mut self, mark: char, cond: Cells) -> String {
        let mut parts = Vec::with_capacity(cond.len());
        for (col, cell) in cond {
            match cell {
                Cell::Text(None) | Cell::Int(None) | Cell::Int32(None) => {
                    parts.push(format!("{col} IS NULL"));
                }
                cell => {
                    let p = self.push(mark, cell);
                    parts.push(format!("{col} = {p}"));
                }
            }
        }
        parts.join(" AND ")
    }

    /// `INSERT INTO table (…) VALUES (…)`.
    pub fn insert(mark: char, table: &str, cells: Cells) -> Stmt {
        let mut s = Stmt {
            sql: String::new(),
            params: Vec::new(),
        };
        let cols: Vec<&str> = cells.iter().map(|(c, _)| *c).collect();
        let marks: Vec<String> = cells.into_iter().map(|(_, v)| s.push(mark, v)).collect();
        s.sql = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            cols.join(", "),
            marks.join(", ")
        );
        s
    }

    /// `UPDATE table SET … WHERE …` (`cond` must not be empty).
    pub fn update(mark: char, table: &str, set: Cells, cond: Cells) -> Stmt {
        let mut s = Stmt {
            sql: String::new(),
            params: Vec::new(),
        };
        let sets: Vec<String> = set
            .into_iter()
            .map(|(col, cell)| match cell {
                Cell::SinceStart(t) => {
                    let p = s.push(mark, Cell::Int(Some(t)));
                    format!("{col} = {p} - started_at")
                }
                cell => format!("{col} = {}", s.push(mark, cell)),
            })
            .collect();
        let cond = s.conditions(mark, cond);
        s.sql = format!("UPDATE {table} SET {} WHERE {cond}", sets.join(", "));
        s
    }

    /// `DELETE FROM table WHERE …` (`cond` must not be empty).
    pub fn delete(mark: char, table: &str, cond: Cells) -> Stmt {
        let mut s = Stmt {
            sql: String::new(),
            params: Vec::new(),
        };
        let cond = s.conditions(mark, cond);
        s.sql = format!("DELETE FROM {table} WHERE {cond}");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_render_for_both_marks() {
        let s = Stmt::update(
            '$',
            "stagings",
            vec![("status", Cell::text("Running")), ("reason", Cell::Text(None))],
            vec![("name", Cell::text("web")), ("op_id", Cell::Int(None))],
        );
        assert_eq!(
            s.sql,
            "UPDATE stagings SET status = $1, reason = $2 WHERE name = $3 AND op_id IS NULL"
        );
        assert_eq!(s.params.len(), 3);
        let s = Stmt::update(
            '?',
            "audit",
            vec![("duration_ms", Cell::SinceStart(7))],
            vec![("id", Cell::Int(Some(1)))],
        );
        assert_eq!(
            s.sql,
            "UPDATE audit SET duration_ms = ?1 - started_at WHERE id = ?2"
        );
        let s = Stmt::insert('?', "t", vec![("a", Cell::Int32(Some(1))), ("b", Cell::text("x"))]);
        assert_eq!(s.sql, "INSERT INTO t (a, b) VALUES (?1, ?2)");
        let s = Stmt::delete('$', "t", vec![("a", Cell::text("x"))]);
        assert_eq!(s.sql, "DELETE FROM t WHERE a = $1");
    }
}
