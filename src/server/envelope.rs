//! The response envelope `{"status", "data", "error"}` and the mapping of
//! engine errors to HTTP statuses.
//!
//! Success: `{"status": "success", "data": …, "error": null}`.
//! Failure: `{"status": "error", "data": null, "error": {"code", "message"}}`
//! where `code` is the engine's [`ErrorKind::name`] (`INVALID_ISCC`, …) or
//! one of the server's own codes (`UNAUTHORIZED`, `PAYLOAD_TOO_LARGE`,
//! `BATCH_TOO_LARGE`, `METHOD_NOT_ALLOWED`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};

use crate::engine::{EngineError, ErrorKind};

/// An error answered with the error envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable upper-case code.
    pub code: &'static str,
    /// What went wrong, naming the bad input.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// A bad request argument (400 `INVALID_ARGUMENT`).
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// A malformed JSON body (400 `INVALID_JSON`).
    pub fn json(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", message)
    }

    /// A bug or an unexpected failure (500 `INTERNAL`).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }
}

/// The HTTP status of an engine error kind.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument
        | ErrorKind::InvalidIscc
        | ErrorKind::InvalidJson
        | ErrorKind::WrongRealm => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        // The request is fine, the index's state forbids it.
        ErrorKind::ReadOnly | ErrorKind::Closed => StatusCode::CONFLICT,
        ErrorKind::Locked => StatusCode::LOCKED,
        ErrorKind::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorKind::Io
        | ErrorKind::Corrupt
        | ErrorKind::IncompatibleFormat
        | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let kind = e.kind();
        ApiError::new(http_status(kind), kind.name(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "data": null,
            "error": {"code": self.code, "message": self.message},
        });
        json_response(self.status, &body)
    }
}

/// The success envelope, serialised straight from `data` (no intermediate
/// `Value`: a search answer of 100 matches is ~25 KB of JSON).
#[derive(Serialize)]
struct Success<'a, T: Serialize> {
    status: &'static str,
    data: &'a T,
    error: Option<()>,
}

/// A success envelope around `data`.
pub fn success<T: Serialize>(data: &T) -> Response {
    let envelope = Success {
        status: "success",
        data,
        error: None,
    };
    match serde_json::to_vec(&envelope) {
        Ok(bytes) => bytes_response(StatusCode::OK, bytes),
        Err(e) => ApiError::internal(format!("encoding the response: {e}")).into_response(),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    // Serialising a `Value` cannot fail (its map keys are strings).
    bytes_response(status, serde_json::to_vec(body).unwrap_or_default())
}

fn bytes_response(status: StatusCode, bytes: Vec<u8>) -> Response {
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_kind_has_a_4xx_or_5xx_status() {
        let kinds = [
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::InvalidIscc, 400),
            (ErrorKind::InvalidJson, 400),
            (ErrorKind::WrongRealm, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::ReadOnly, 409),
            (ErrorKind::Closed, 409),
            (ErrorKind::Locked, 423),
            (ErrorKind::DiskFull, 507),
            (ErrorKind::Io, 500),
            (ErrorKind::Corrupt, 500),
            (ErrorKind::IncompatibleFormat, 500),
            (ErrorKind::Internal, 500),
        ];
        for (kind, status) in kinds {
            assert_eq!(http_status(kind).as_u16(), status, "{kind:?}");
        }
    }
}
