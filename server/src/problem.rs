//! Errors as `application/problem+json` (RFC 9457), carrying capsa's stable `code`.
//!
//! [`status_of`] is the one mapping of capsa's error codes to HTTP statuses. The server adds
//! codes of its own, which no library call raises: `UNAUTHENTICATED` (401: no token, or one
//! that is not known), `FORBIDDEN` (403: the token's role does not allow the call),
//! `METHOD_NOT_ALLOWED` (405) and `NOT_FOUND` for a route that does not exist.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use capsa::ErrorCode;
use serde_json::json;

/// The media type of a problem response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The HTTP status of a capsa error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists
        | ErrorCode::Busy
        | ErrorCode::InvalidTransition
        | ErrorCode::Sealed
        | ErrorCode::Changed => StatusCode::CONFLICT,
        ErrorCode::InvalidName
        | ErrorCode::InvalidVersion
        | ErrorCode::InvalidSequence
        | ErrorCode::InvalidArgument
        | ErrorCode::UnsafePath => StatusCode::BAD_REQUEST,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Backend => StatusCode::BAD_GATEWAY,
        ErrorCode::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::State | ErrorCode::InvalidStore => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Cancelled | ErrorCode::Corrupt | ErrorCode::Io => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A problem response.
#[derive(Debug)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// capsa's code (`NOT_FOUND`…), or one of the server's own.
    pub code: &'static str,
    /// One line saying what is wrong.
    pub detail: String,
}

impl Problem {
    /// A problem of the server's own.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// `401 UNAUTHENTICATED`.
    pub fn unauthenticated(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", detail)
    }

    /// `403 FORBIDDEN`.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    /// `404 NOT_FOUND`.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }

    /// `400 INVALID_ARGUMENT` (a body or query that does not parse).
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", detail)
    }
}

impl From<capsa::Error> for Problem {
    fn from(e: capsa::Error) -> Problem {
        let code = e.code();
        Problem {
            status: status_of(code),
            code: code.as_str(),
            detail: capsa::error::one_line(&e.to_string()).into_owned(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = json!({
            "type": format!("https://capsa.invalid/problems/{}", self.code.to_ascii_lowercase()),
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        let mut r = (self.status, axum::Json(body)).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(PROBLEM_JSON),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"capsa\", Basic realm=\"capsa\""),
            );
        }
        r
    }
}

/// A JSON body that did not parse (or was too large) as a problem.
impl From<axum::extract::rejection::JsonRejection> for Problem {
    fn from(r: axum::extract::rejection::JsonRejection) -> Problem {
        let status = r.status();
        let detail = capsa::error::one_line(&r.body_text()).into_owned();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(status, "TOO_LARGE", detail)
        } else {
            Problem::bad_request(detail)
        }
    }
}

/// A query string that did not parse as a problem.
impl From<axum::extract::rejection::QueryRejection> for Problem {
    fn from(r: axum::extract::rejection::QueryRejection) -> Problem {
        Problem::bad_request(capsa::error::one_line(&r.body_text()).into_owned())
    }
}

/// A path that did not parse as a problem.
impl From<axum::extract::rejection::PathRejection> for Problem {
    fn from(r: axum::extract::rejection::PathRejection) -> Problem {
        Problem::bad_request(capsa::error::one_line(&r.body_text()).into_owned())
    }
}

/// A handler's result.
pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status() {
        for code in ErrorCode::ALL {
            let s = status_of(code);
            assert!(s.is_client_error() || s.is_server_error(), "{code:?} {s}");
        }
        assert_eq!(status_of(ErrorCode::Busy), StatusCode::CONFLICT);
        assert_eq!(status_of(ErrorCode::InvalidName), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(ErrorCode::Backend), StatusCode::BAD_GATEWAY);
    }
}
