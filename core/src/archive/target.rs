//! Archive targets chosen by URL: a local path (`/path/x.zip`, `file:///path/x.zip`) or an
//! object in an S3-compatible bucket (`s3://bucket/prefix/x.zip`, feature `s3`).
//!
//! Every archive function takes the target as a path-like value; core recognises the URL
//! forms here, so the CLI and the bindings pass strings through unchanged.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where an archive lives, parsed from a path or URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveTarget {
    /// A file on a local (or mounted) filesystem.
    Local(PathBuf),
    /// An object in an S3-compatible bucket: the `s3://bucket/key` URL as given.
    Bucket(String),
}

impl ArchiveTarget {
    /// Parse `/path/x.zip`, `relative/x.zip`, `file:///path/x.zip` or `s3://bucket/key`.
    /// `InvalidArgument` for other schemes, a `file://` URL with a host, or an `s3://` URL
    /// without bucket or key.
    pub fn parse(target: impl AsRef<Path>) -> Result<ArchiveTarget> {
        let path = target.as_ref();
        let Some(text) = path.to_str() else {
            return Ok(ArchiveTarget::Local(path.to_path_buf()));
        };
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(Error::InvalidArgument {
                    what: "archive URL",
                    reason: format!(
                        "{text:?}: a file URL needs an absolute path (file:///dir/x.zip)"
                    ),
                });
            }
            return Ok(ArchiveTarget::Local(PathBuf::from(rest)));
        }
        if text.starts_with("s3://") {
            check_s3_url(text)?;
            return Ok(ArchiveTarget::Bucket(text.to_string()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(Error::InvalidArgument {
                    what: "archive URL",
                    reason: format!(
                        "{text:?}: unknown scheme {scheme:?} (use a path, file:///… or s3://bucket/key)"
                    ),
                });
            }
        }
        Ok(ArchiveTarget::Local(path.to_path_buf()))
    }

    /// Whether this is a bucket object.
    pub fn is_bucket(&self) -> bool {
        matches!(self, ArchiveTarget::Bucket(_))
    }
}

/// Whether a recorded archive location (an offline stub's) is a URL rather than a path.
pub(crate) fn is_url(location: &str) -> bool {
    location.starts_with("s3://")
}

/// Bucket and key of `s3://bucket/key[?query]`.
pub(crate) fn split_s3_url(url: &str) -> Result<(&str, &str, Option<&str>)> {
    let bad = |why: &str| Error::InvalidArgument {
        what: "archive URL",
        reason: format!("{url:?}: {why} (expected s3://bucket/prefix/name.zip)"),
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad("not an s3:// URL"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (bucket, key) = rest.split_once('/').ok_or_else(|| bad("no object key"))?;
    if bucket.is_empty() {
        return Err(bad("no bucket name"));
    }
    if key.is_empty() || key.ends_with('/') {
        return Err(bad("no object name after the bucket"));
    }
    if key
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(bad("empty, '.' or '..' part in the object key"));
    }
    Ok((bucket, key, query))
}

fn check_s3_url(url: &str) -> Result<()> {
    split_s3_url(url).map(|_| ())
}

#[cfg(not(feature = "s3"))]
pub(crate) fn no_s3(url: &str) -> Error {
    Error::Unsupported {
        what: format!("{url}: this build of capsa has no object storage support (feature s3)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            ArchiveTarget::parse("/a/x.zip").unwrap(),
            ArchiveTarget::Local("/a/x.zip".into())
        );
        assert_eq!(
            ArchiveTarget::parse("file:///a/x.zip").unwrap(),
            ArchiveTarget::Local("/a/x.zip".into())
        );
        assert!(ArchiveTarget::parse("s3://b/p/x.zip").unwrap().is_bucket());
        for bad in [
            "s3://b",
            "s3:///x.zip",
            "s3://b/",
            "s3://b/a//x.zip",
            "ftp://h/x.zip",
            "file://h/x",
        ] {
            let e = ArchiveTarget::parse(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidArgument, "{bad}");
        }
        assert_eq!(
            split_s3_url("s3://b/p/x.zip?region=r").unwrap(),
            ("b", "p/x.zip", Some("region=r"))
        );
    }
}
