//! Checks of what users type: staging names, tags, actors; and how tags compare.

use std::cmp::Ordering;

use crate::error::{shown, Error, Result};

/// Check a staging name: usable as a Kubernetes namespace and label value: lowercase ASCII
/// letters, digits and `-`, starting with a letter, not ending with `-`, 3 to 40 characters.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |rule: &str| {
        Err(Error::InvalidName {
            what: "staging name",
            value: shown(name),
            rule: rule.to_string(),
        })
    };
    let n = name.chars().count();
    if !(3..=40).contains(&n) {
        return bad("must be 3 to 40 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return bad("must start with a lowercase letter (a-z)");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad("may contain only lowercase letters a-z, digits 0-9 and '-'");
    }
    if name.ends_with('-') {
        return bad("must not end with '-'");
    }
    Ok(())
}

/// Check a tag's form: 1 to 128 characters of letters, digits, `.`, `_`, `-`, `+`.
/// Whether the backend accepts it is its `tag_check`'s business.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what: "tag",
            value: shown(tag),
            rule: "must be 1 to 128 characters of letters, digits, '.', '_', '-', '+'".into(),
        })
    }
}

/// Check an actor (who issues commands, recorded in the audit log): 1 to 128 characters, no
/// control characters (a newline in an actor could forge a row of `staging log`).
pub fn validate_actor(actor: &str) -> Result<()> {
    let n = actor.chars().count();
    if (1..=128).contains(&n) && !actor.chars().any(char::is_control) {
        return Ok(());
    }
    Err(Error::InvalidName {
        what: "actor",
        value: shown(actor),
        rule: "must be 1 to 128 characters with no control characters".into(),
    })
}

/// Compare two tags: as semantic versions when both parse as one (an optional leading `v`
/// allowed), otherwise as strings.
pub fn compare_tags(a: &str, b: &str) -> Ordering {
    fn sv(t: &str) -> Option<semver::Version> {
        semver::Version::parse(t.strip_prefix('v').unwrap_or(t)).ok()
    }
    match (sv(a), sv(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        // Every listed case is asserted (issue 23: a length guard used to skip some, and "s1",
        // 2 characters, is in fact too short).
        for ok in [
            "abc",
            "a-b-c",
            "s12",
            "a1b",
            "stage-42",
            "a--b",
            &"a".repeat(40),
        ] {
            validate_name(ok).unwrap_or_else(|e| panic!("{ok:?} refused: {e}"));
        }
        for bad in [
            "ab",
            "s1",
            "Abc",
            "1abc",
            "-abc",
            "abc-",
            "a_b",
            "a.b.c",
            "ab c",
            &"a".repeat(41),
            "",
        ] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidName, "{bad}");
        }
    }

    #[test]
    fn tags_compare_as_semver() {
        assert_eq!(compare_tags("1.10.0", "1.9.0"), Ordering::Greater);
        assert_eq!(compare_tags("v2.0.0", "1.9.9"), Ordering::Greater);
        assert_eq!(compare_tags("abc", "abd"), Ordering::Less);
    }
}
