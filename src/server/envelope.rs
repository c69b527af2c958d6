//! The response envelope `{"status", "data", "error"}` and the mapping of
//! engine errors to HTTP statuses.
//!
//! Success: `{"status": "success", "data": …, "error": null}`.
//! Failure: `{"status": "error", "data": null, "error": {"code", "message"}}`
//! where `code` is the engine's [`ErrorKind::name`] (`INVALID_ISCC`, …) or
//! one of the server's own codes ([`ServerCode`]). These two lists are the
//! only places a code is spelled; the OpenAPI document's enum is checked
//! against them by a test.

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

    /// An error of an engine kind, with that kind's status and code.
    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError::new(http_status(kind), kind.name(), message)
    }

    /// One of the server's own errors.
    pub fn server(code: ServerCode, message: impl Into<String>) -> ApiError {
        ApiError::new(code.status(), code.name(), message)
    }

    /// A bad request argument (400 `INVALID_ARGUMENT`).
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::of_kind(ErrorKind::InvalidArgument, message)
    }

    /// A malformed JSON body (400 `INVALID_JSON`).
    pub fn json(message: impl Into<String>) -> ApiError {
        ApiError::of_kind(ErrorKind::InvalidJson, message)
    }

    /// A bug or an unexpected failure (500 `INTERNAL`).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::of_kind(ErrorKind::Internal, message)
    }
}

/// The error codes of the server itself (beside the engine's
/// [`ErrorKind`]s), with their HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCode {
    /// 401: a missing or wrong API key.
    Unauthorized,
    /// 403: a request the server refuses to serve (see `guard.rs`).
    Forbidden,
    /// 404: no such endpoint (a missing entry is the engine's `NOT_FOUND`).
    NoEndpoint,
    /// 405: a known path with another method.
    MethodNotAllowed,
    /// 408: the body did not arrive in time.
    RequestTimeout,
    /// 413: a body over `--max-body`.
    PayloadTooLarge,
    /// 413: more items than `--max-batch`.
    BatchTooLarge,
    /// 415: a body that is not JSON by its Content-Type.
    UnsupportedMediaType,
    /// 409: a named index that exists already, or a change of the index
    /// set a server cannot make (iscc-search's routes, `catalog.rs`).
    Conflict,
    /// 422: a body or parameter against iscc-search's schema.
    Unprocessable,
}

impl ServerCode {
    /// Every server code, in the order the OpenAPI document lists them.
    pub const ALL: [ServerCode; 10] = [
        ServerCode::Unauthorized,
        ServerCode::NoEndpoint,
        ServerCode::PayloadTooLarge,
        ServerCode::BatchTooLarge,
        ServerCode::MethodNotAllowed,
        ServerCode::UnsupportedMediaType,
        ServerCode::Forbidden,
        ServerCode::RequestTimeout,
        ServerCode::Conflict,
        ServerCode::Unprocessable,
    ];

    /// The code in the envelope. A missing endpoint shares the engine's
    /// `NOT_FOUND` (a client tells them apart by the message).
    pub fn name(self) -> &'static str {
        match self {
            ServerCode::Unauthorized => "UNAUTHORIZED",
            ServerCode::Forbidden => "FORBIDDEN",
            ServerCode::NoEndpoint => ErrorKind::NotFound.name(),
            ServerCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ServerCode::RequestTimeout => "REQUEST_TIMEOUT",
            ServerCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ServerCode::BatchTooLarge => "BATCH_TOO_LARGE",
            ServerCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ServerCode::Conflict => "CONFLICT",
            ServerCode::Unprocessable => "UNPROCESSABLE",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ServerCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ServerCode::Forbidden => StatusCode::FORBIDDEN,
            ServerCode::NoEndpoint => StatusCode::NOT_FOUND,
            ServerCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ServerCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ServerCode::PayloadTooLarge | ServerCode::BatchTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ServerCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ServerCode::Conflict => StatusCode::CONFLICT,
            ServerCode::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
        }
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
        ApiError::of_kind(e.kind(), e.to_string())
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
