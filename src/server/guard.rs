//! What keeps a web page from using the server: a browser lets any page
//! send a "simple" cross-site POST and, after DNS rebinding, read answers
//! from a loopback server under a foreign host name. So:
//!
//! * `Host` must name this server: by default, a server bound to a
//!   loopback address answers only to `localhost`, `127.0.0.1`, `[::1]`
//!   (and its own address); `--allowed-host` sets the names explicitly
//!   (`*`: any). A server bound to another address accepts any name unless
//!   names are given.
//! * A request with an `Origin` (every cross-origin browser request with a
//!   body has one) is refused unless the origin is this server itself or in
//!   the `--cors-origin` allow-list; allowed origins get CORS headers, and
//!   their preflight (`OPTIONS`) is answered.
//! * Bodies must be JSON (`routes::require_json`): a page cannot send that
//!   cross-site without a preflight.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::envelope::{ApiError, ServerCode};
use super::AppState;

/// Who may talk to the server (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Host names the server answers to (no port; `*` = any). Empty: the
    /// default rule of the module docs.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed cross-origin (`https://app.example:8443`;
    /// `*` = any).
    pub cors_origins: Vec<String>,
}

/// The host name of a `Host` header value (port and IPv6 brackets kept
/// apart: `[::1]:8000` → `[::1]`).
fn host_name(value: &str) -> &str {
    if value.starts_with('[') {
        return value.split_inclusive(']').next().unwrap_or(value);
    }
    value.rsplit_once(':').map_or(value, |(h, _)| h)
}

impl Access {
    fn host_allowed(&self, host: &str, bound: SocketAddr) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        if !self.allowed_hosts.is_empty() {
            return self
                .allowed_hosts
                .iter()
                .any(|h| h == "*" || h.eq_ignore_ascii_case(&name));
        }
        if !bound.ip().is_loopback() {
            return true;
        }
        let own = match bound.ip() {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        ["localhost", "127.0.0.1", "[::1]"].contains(&name.as_str()) || name == own
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let same = host.is_some_and(|h| {
            origin.eq_ignore_ascii_case(&format!("http://{h}"))
                || origin.eq_ignore_ascii_case(&format!("https://{h}"))
        });
        same || self
            .cors_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

fn forbidden(message: String) -> Response {
    ApiError::server(ServerCode::Forbidden, message).into_response()
}

/// The middleware of the module docs.
pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let (Some(h), Some(bound)) = (host, state.bound) {
        if !state.access.host_allowed(h, bound) {
            return forbidden(format!(
                "Host {h:?} is not a name of this server (allow it with --allowed-host)"
            ));
        }
    }
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return next.run(request).await;
    };
    if !state.access.origin_allowed(&origin, host) {
        return forbidden(format!(
            "cross-origin request from {origin} refused (allow the origin with --cors-origin)"
        ));
    }
    let preflight = request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, x-api-key"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(request).await
    };
    if let Ok(v) = HeaderValue::from_str(&origin) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        let loopback: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        let default = Access::default();
        assert!(default.host_allowed("127.0.0.1:8000", loopback));
        assert!(default.host_allowed("LOCALHOST:8000", loopback));
        assert!(default.host_allowed("[::1]:8000", loopback));
        assert!(
            !default.host_allowed("evil.example:8000", loopback),
            "DNS rebinding"
        );
        assert!(default.host_allowed("db.internal:8000", any));
        let named = Access {
            allowed_hosts: vec!["db.internal".into()],
            ..Access::default()
        };
        assert!(named.host_allowed("db.internal:8000", any));
        assert!(!named.host_allowed("other:8000", any));
        assert!(default.origin_allowed("http://127.0.0.1:8000", Some("127.0.0.1:8000")));
        assert!(!default.origin_allowed("https://evil.example", Some("127.0.0.1:8000")));
        let cors = Access {
            cors_origins: vec!["https://app.example".into()],
            ..Access::default()
        };
        assert!(cors.origin_allowed("https://app.example", Some("127.0.0.1:8000")));
        assert!(!cors.origin_allowed("https://other.example", None));
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("example.org"), "example.org");
    }
}
