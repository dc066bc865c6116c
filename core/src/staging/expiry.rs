//! Time to live: a staging created or updated with a TTL is archived (`delete`, by the actor
//! [`TTL_ACTOR`]) by `reconcile` once its expiry has passed, as preview environments are
//! (argo-cd #3818, #14096). Also the one spelling of a duration (`30s`, `90m`, `3d`, `1h30m`)
//! that the CLI and every binding accept.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// The audit actor of a `delete` that `reconcile` runs because a staging's expiry passed.
pub const TTL_ACTOR: &str = "ttl";

/// What a command does to a staging's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Keep the stored expiry (a new staging has none). A `restore` drops an expiry that has
    /// already passed, so that a restored staging is not archived again at once.
    #[default]
    Keep,
    /// Expire this long after the command starts.
    In(Duration),
    /// Never expire (drop the stored expiry).
    Never,
}

impl Expiry {
    /// Parse a TTL as the CLI and the bindings spell it: a [`parse_duration`] form, or
    /// `never` / `none` for [`Expiry::Never`].
    pub fn parse(text: &str) -> Result<Expiry> {
        match text.trim() {
            "never" | "none" => Ok(Expiry::Never),
            t => parse_duration("ttl", t).map(Expiry::In),
        }
    }

    /// The text [`Expiry::parse`] reads back as this expiry (`never`, `3600s`); `None` for
    /// [`Expiry::Keep`], which has none. A time to live is rounded to whole seconds (at
    /// least 1).
    pub fn spec(self) -> Option<String> {
        match self {
            Expiry::Keep => None,
            Expiry::Never => Some("never".into()),
            Expiry::In(d) => Some(format!("{}s", d.as_secs().max(1))),
        }
    }

    /// The stored expiry after a command started at `now` on a staging whose expiry was
    /// `current`: `None` leaves the column as it is.
    pub(crate) fn column(
        self,
        now: DateTime<Utc>,
        current: Option<DateTime<Utc>>,
        restoring: bool,
    ) -> Option<Option<DateTime<Utc>>> {
        match self {
            Expiry::In(d) => Some(Some(now + chrono_duration(d))),
            Expiry::Never => Some(None),
            Expiry::Keep if restoring && current.is_some_and(|t| t <= now) => Some(None),
            Expiry::Keep => None,
        }
    }
}

/// `d` as a chrono duration (saturating: a TTL of centuries is "never" in practice).
pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX / 2)
}

/// Parse a duration: one or more `NUMBER UNIT` parts with the units `ms`, `s`, `m`, `h`, `d`,
/// `w` (`30s`, `90m`, `3d`, `1h30m`), or a bare number of seconds. `what` names the setting
/// in the `InvalidArgument` error.
pub fn parse_duration(what: &'static str, text: &str) -> Result<Duration> {
    let bad = |reason: String| Error::InvalidArgument { what, reason };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad(
            "empty duration: expected e.g. 30s, 90m, 3d or 1h30m".into()
        ));
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad(format!(
                "{:?} is not a duration: expected e.g. 30s, 90m, 3d or 1h30m",
                crate::error::shown(t)
            )));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad(format!("{:?}: number too large", crate::error::shown(t))))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_secs = match &rest[..unit_len] {
            "ms" => None,
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            "w" => Some(7 * 86_400),
            u => {
                return Err(bad(format!(
                    "unknown unit {:?} in {:?}: use ms, s, m, h, d or w",
                    crate::error::shown(u),
                    crate::error::shown(t)
                )))
            }
        };
        rest = &rest[unit_len..];
        let part = match unit_secs {
            None => Some(Duration::from_millis(n)),
            Some(u) => n.checked_mul(u).map(Duration::from_secs),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| bad(format!("{:?}: too long", crate::error::shown(t))))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        let p = |t| parse_duration("ttl", t).unwrap();
        assert_eq!(p("30s"), Duration::from_secs(30));
        assert_eq!(p("90m"), Duration::from_secs(5400));
        assert_eq!(p("3d"), Duration::from_secs(3 * 86_400));
        assert_eq!(p("1h30m"), Duration::from_secs(5400));
        assert_eq!(p("2w"), Duration::from_secs(14 * 86_400));
        assert_eq!(p("250ms"), Duration::from_millis(250));
        assert_eq!(p("45"), Duration::from_secs(45));
        for bad in ["", "3x", "d", "-1s", "1.5h", "99999999999999999999d", "3 d"] {
            let e = parse_duration("ttl", bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
            assert!(e.to_string().contains("ttl"), "{e}");
        }
    }

    #[test]
    fn restore_drops_a_passed_expiry_only() {
        let now = Utc::now();
        let past = Some(now - chrono::Duration::seconds(1));
        let future = Some(now + chrono::Duration::seconds(60));
        assert_eq!(Expiry::Keep.column(now, past, true), Some(None));
        assert_eq!(Expiry::Keep.column(now, future, true), None);
        assert_eq!(Expiry::Keep.column(now, past, false), None);
        assert_eq!(Expiry::Never.column(now, future, false), Some(None));
        assert_eq!(
            Expiry::In(Duration::from_secs(60)).column(now, None, false),
            Some(Some(now + chrono::Duration::seconds(60)))
        );
        assert_eq!(Expiry::parse("never").unwrap(), Expiry::Never);
        assert_eq!(
            Expiry::parse("3d").unwrap(),
            Expiry::In(Duration::from_secs(3 * 86_400))
        );
    }
}
