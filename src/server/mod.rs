//! The REST server (feature `server`): the engine over HTTP/1.1 with axum.
//!
//! One embedded [`IsccIndex`] per server. Endpoints (see `openapi.json`):
//!
//! ```text
//! POST   /add           {"entries": {…} | [{…}, …]}           → ISCC-IDs
//! GET    /get/{id}                                             → entry (404 if absent)
//! POST   /get           {"iscc_ids": […]}                      → entries, null if absent
//! POST   /search        {"iscc_codes" | "units", "count", "exact", "unit_threshold"}
//! DELETE /remove/{id}                                          → report (404 if absent)
//! POST   /remove        {"iscc_ids": […]}                      → {removed, not_found, mappings}
//! POST   /rebuild, POST /save, GET /info                       → index info
//! GET    /healthz       (never needs the API key), GET /openapi.json
//! ```
//!
//! Every answer is the envelope `{"status", "data", "error"}`
//! (`envelope.rs`). Engine calls run on tokio's blocking pool: searches run
//! in parallel, writes are serialised inside the engine. Shutdown (SIGINT,
//! SIGTERM) stops accepting, lets requests in flight finish, then saves and
//! closes the index.

mod catalog;
mod compat;
mod envelope;
mod guard;
mod listen;
mod openapi;
mod request;
mod routes;
mod site;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

pub use self::guard::Access;
pub use self::listen::Timeouts;
use crate::engine::{EngineError, IsccIndex};

/// Request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body in bytes (larger → 413 `PAYLOAD_TOO_LARGE`).
    pub max_body_bytes: usize,
    /// Most entries, IDs or queries per request (more → 413
    /// `BATCH_TOO_LARGE`).
    pub max_batch: usize,
    /// Largest `count` of a search.
    pub max_count: usize,
    /// Searches run at once (0: no limit); more wait their turn in
    /// arrival order. The default, twice the cores, keeps every core busy
    /// while bounding tail latency: with 16 clients on 2 cores, p99 fell
    /// from ~40 ms (no limit) to ~7 ms at the same throughput.
    pub search_concurrency: usize,
    /// Writes (add, remove, rebuild, save) run one after another in the
    /// engine anyway; this many may parse and wait at once (in arrival
    /// order), so concurrent large bodies cannot pile up in memory.
    pub write_concurrency: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // 10,000 entries of ~250 bytes are ~2.5 MB; parsed JSON takes
            // up to ~40 times a body's size, so the cap bounds memory.
            max_body_bytes: 8 << 20,
            write_concurrency: 1,
            max_batch: 10_000,
            max_count: 10_000,
            search_concurrency: std::thread::available_parallelism().map_or(8, |n| 2 * n.get()),
        }
    }
}

/// How to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address to bind (port 0: any free port).
    pub addr: SocketAddr,
    /// When set, every endpoint but `/healthz` needs `X-API-Key: <key>`.
    pub api_key: Option<String>,
    /// Request limits.
    pub limits: Limits,
    /// Write one line per request to stderr (method, path, status, time).
    pub access_log: bool,
    /// Allowed host names and browser origins.
    pub access: Access,
    /// Connection cap and deadlines.
    pub timeouts: Timeouts,
    /// Say `<index>` instead of the index directory in answers (`/info`
    /// and error messages), so clients do not learn server paths.
    pub hide_paths: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            api_key: None,
            limits: Limits::default(),
            access_log: false,
            access: Access::default(),
            timeouts: Timeouts::default(),
            hide_paths: false,
        }
    }
}

/// Errors of running the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The address could not be bound or the runtime failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Saving or closing the index at shutdown failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What every handler shares.
pub(crate) struct AppState {
    /// The index of this server's own routes (`None` for `--root`).
    pub(crate) index: Option<Arc<IsccIndex>>,
    /// The indexes by name (iscc-search's routes).
    pub(crate) catalog: Arc<catalog::Catalog>,
    pub(crate) api_key: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) read_only: bool,
    /// Permits for searches when their concurrency is limited.
    pub(crate) search_slots: Option<Arc<tokio::sync::Semaphore>>,
    /// Permits for writes (see [`Limits::write_concurrency`]).
    pub(crate) write_slots: Arc<tokio::sync::Semaphore>,
    /// One large body is parsed at a time (parsed JSON takes up to ~40
    /// times the body's size), so memory stays bounded by about one.
    pub(crate) parse_slot: Arc<tokio::sync::Semaphore>,
    /// Host and origin rules, and the address they are checked against
    /// (`None`: not bound by [`run`], no host check).
    pub(crate) access: Access,
    pub(crate) bound: Option<SocketAddr>,
}

/// The axum router over `index` (for embedding in another server; [`run`]
/// serves it).
pub fn router(index: Arc<IsccIndex>, api_key: Option<String>, limits: Limits) -> Router {
    router_with_access(index, api_key, limits, Access::default(), None)
}

/// [`router`] with host and origin rules, checked against the address
/// the server is bound to.
pub fn router_with_access(
    index: Arc<IsccIndex>,
    api_key: Option<String>,
    limits: Limits,
    access: Access,
    bound: Option<SocketAddr>,
) -> Router {
    let read_only = index.info().map(|i| i.read_only).unwrap_or(false);
    let catalog = Arc::new(catalog::Catalog::One(Arc::clone(&index)));
    build(
        Some(index),
        catalog,
        read_only,
        api_key,
        limits,
        access,
        bound,
    )
}

fn build(
    index: Option<Arc<IsccIndex>>,
    catalog: Arc<catalog::Catalog>,
    read_only: bool,
    api_key: Option<String>,
    limits: Limits,
    access: Access,
    bound: Option<SocketAddr>,
) -> Router {
    let state = Arc::new(AppState {
        index,
        catalog,
        api_key,
        limits,
        read_only,
        access,
        bound,
        search_slots: (limits.search_concurrency > 0)
            .then(|| Arc::new(tokio::sync::Semaphore::new(limits.search_concurrency))),
        write_slots: Arc::new(tokio::sync::Semaphore::new(limits.write_concurrency.max(1))),
        parse_slot: Arc::new(tokio::sync::Semaphore::new(1)),
    });
    Router::new()
        .route("/add", post(routes::add))
        .route("/get/{id}", get(routes::get_one))
        .route("/get", post(routes::get_many))
        .route("/search", post(routes::search))
        .route("/remove/{id}", delete(routes::remove_one))
        .route("/remove", post(routes::remove_many))
        .route("/rebuild", post(routes::rebuild))
        .route("/info", get(routes::info))
        .route("/save", post(routes::save))
        .route("/openapi.json", get(routes::openapi))
        .route("/explain/{iscc}", get(routes::explain))
        .merge(compat::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            routes::follow_writer,
        ))
        .route_layer(axum::middleware::from_fn(routes::require_json))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            routes::auth,
        ))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .merge(site::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::guard,
        ))
        .layer(axum::middleware::from_fn(compat::dialect))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    envelope::ApiError::internal("the request handler panicked").into_response()
}

/// What a server serves.
#[derive(Debug)]
#[non_exhaustive]
pub enum Served {
    /// One index (`serve --path`): this server's own routes, and
    /// iscc-search's with the index named `default`.
    Index(Box<IsccIndex>),
    /// The indexes under a directory, by name (`serve --root`):
    /// iscc-search's routes, each index opened on first use.
    Root {
        /// The directory (created when missing, unless read-only).
        dir: PathBuf,
        /// Open every index read-only; creating and deleting are refused.
        read_only: bool,
        /// Indexes kept open at most (least recently used closed first).
        max_open: usize,
    },
}

/// Serve `index` until SIGINT or SIGTERM, then save and close it.
/// `on_listening` is called with the bound address (useful with port 0).
pub fn run(
    index: IsccIndex,
    config: ServerConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    run_served(Served::Index(Box::new(index)), config, on_listening)
}

/// Serve what `served` names until SIGINT or SIGTERM, then save and close
/// every open index.
pub fn run_served(
    served: Served,
    config: ServerConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let (index, catalog, read_only, root) = match served {
        Served::Index(index) => {
            let index: Arc<IsccIndex> = Arc::from(index);
            let read_only = index.info().map(|i| i.read_only).unwrap_or(false);
            let root = index.path().to_string_lossy().into_owned();
            let catalog = catalog::Catalog::One(Arc::clone(&index));
            (Some(index), catalog, read_only, root)
        }
        Served::Root {
            dir,
            read_only,
            max_open,
        } => {
            let catalog =
                catalog::Catalog::root(&dir, read_only, max_open).map_err(|e| ServerError::Io {
                    context: format!("opening the index directory {}", dir.display()),
                    source: std::io::Error::other(e.message),
                })?;
            (None, catalog, read_only, dir.to_string_lossy().into_owned())
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("iscc-vdb-http")
        .build()
        .map_err(|source| ServerError::Io {
            context: "starting the async runtime".into(),
            source,
        })?;
    let catalog = Arc::new(catalog);
    let (own, shared) = (index.clone(), Arc::clone(&catalog));
    let (api_key, limits, access) = (config.api_key.clone(), config.limits, config.access.clone());
    let app = move |bound| build(own, shared, read_only, api_key, limits, access, bound);
    let served = runtime.block_on(serve(app, root, config, on_listening));
    // Requests in flight have finished (graceful shutdown); blocking tasks
    // that outlived them are waited for by dropping the runtime.
    drop(runtime);
    let mut closed = catalog.close_all();
    if let Some(index) = index {
        let own = index.close();
        closed = closed.and(own);
    }
    served?;
    Ok(closed?)
}

async fn serve(
    app: impl FnOnce(Option<SocketAddr>) -> Router,
    root: String,
    config: ServerConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Io {
            context: format!("binding {}", config.addr),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Io {
        context: "reading the bound address".into(),
        source,
    })?;
    let mut app = app(Some(addr)).layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        config.timeouts.body,
    ));
    if config.hide_paths {
        app = app.layer(axum::middleware::from_fn_with_state(
            Arc::new(root),
            routes::hide_paths,
        ));
    }
    if config.access_log {
        app = app.layer(axum::middleware::from_fn(routes::access_log));
    }
    let signals = shutdown_signal().await?;
    on_listening(addr);
    listen::serve_connections(listener, app, config.timeouts, signals).await;
    Ok(())
}

/// A future that completes on SIGINT or SIGTERM (handlers are installed
/// before the server reports that it listens, so no signal is missed).
async fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|source| ServerError::Io {
            context: format!("installing the {name} handler"),
            source,
        })
    };
    let mut term = install(SignalKind::terminate(), "SIGTERM")?;
    let mut int = install(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}
