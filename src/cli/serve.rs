//! `serve`: the REST server on the index at `--path`, or on every index
//! under `--root` by name (iscc-search's API).

use std::net::{IpAddr, SocketAddr};

use clap::Args;

use super::{display, exit, CliError, CliResult, Ctx};
use crate::server::{Limits, Served, ServerConfig, ServerError};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Serve every index directory under DIR by name (iscc-search's
    /// `/indexes/{name}/…` API; names `^[a-z][a-z0-9]*$`, created and
    /// deleted over HTTP) instead of the one index at --path.
    #[arg(long, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
    /// With --root: indexes kept open at most (the least recently used is
    /// saved and closed first).
    #[arg(long, default_value_t = 64)]
    max_open: usize,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port (0: any free port; the chosen one is printed on stderr).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Require `X-API-Key: <key>` on every endpoint but /healthz.
    #[arg(long, env = "ISCC_VDB_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body: usize,
    /// Most entries, IDs or queries per request.
    #[arg(long, default_value_t = Limits::default().max_batch)]
    max_batch: usize,
    /// Searches run at once; more wait their turn in arrival order, which
    /// bounds tail latency under load (default: twice the cores; 0: no limit).
    #[arg(long)]
    search_concurrency: Option<usize>,
    /// Log every request to stderr (method, path, status, milliseconds).
    #[arg(long)]
    access_log: bool,
    /// Serve read-only (writes answer 409 READ_ONLY; runs beside a writer).
    #[arg(long)]
    read_only: bool,
    /// A host name clients may use (repeatable; `*`: any). Default: a
    /// loopback server answers only to localhost, 127.0.0.1 and [::1]
    /// (against DNS rebinding), another address to any name.
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// A browser origin allowed to call the API cross-origin (repeatable,
    /// e.g. https://app.example; `*`: any). Default: none.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Open connections at most (more are closed at once).
    #[arg(long, default_value_t = crate::server::Timeouts::default().max_connections)]
    max_connections: usize,
    /// Seconds a client has to send request headers (also the keep-alive
    /// idle limit).
    #[arg(long, default_value_t = crate::server::Timeouts::default().header.as_secs_f64())]
    header_timeout: f64,
    /// Seconds a client has to send a request body (408 after).
    #[arg(long, default_value_t = crate::server::Timeouts::default().body.as_secs_f64())]
    body_timeout: f64,
    /// Say `<index>` instead of the index directory in answers (`/info`,
    /// error messages).
    #[arg(long)]
    hide_paths: bool,
    /// Seconds requests in flight get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value_t = crate::server::Timeouts::default().shutdown.as_secs_f64())]
    shutdown_timeout: f64,
}

/// A positive number of seconds.
fn seconds(name: &str, s: f64) -> Result<std::time::Duration, CliError> {
    if s.is_finite() && s > 0.0 && s < 1e9 {
        Ok(std::time::Duration::from_secs_f64(s))
    } else {
        Err(CliError::new(
            exit::USAGE,
            format!("--{name}: expected a positive number of seconds, got {s}"),
        ))
    }
}

pub(super) fn run(ctx: &Ctx, args: &ServeArgs) -> CliResult {
    if args.api_key.as_deref() == Some("") {
        return Err(CliError::new(exit::USAGE, "--api-key: empty key"));
    }
    if args.max_connections == 0 {
        return Err(CliError::new(exit::USAGE, "--max-connections: at least 1"));
    }
    let timeouts = crate::server::Timeouts {
        max_connections: args.max_connections,
        header: seconds("header-timeout", args.header_timeout)?,
        body: seconds("body-timeout", args.body_timeout)?,
        shutdown: seconds("shutdown-timeout", args.shutdown_timeout)?,
    };
    if args.max_open == 0 {
        return Err(CliError::new(exit::USAGE, "--max-open: at least 1"));
    }
    let config = ServerConfig {
        addr: SocketAddr::new(args.host, args.port),
        api_key: args.api_key.clone(),
        limits: Limits {
            max_body_bytes: args.max_body,
            max_batch: args.max_batch,
            search_concurrency: args
                .search_concurrency
                .unwrap_or(Limits::default().search_concurrency),
            ..Limits::default()
        },
        access_log: args.access_log,
        access: crate::server::Access {
            allowed_hosts: args.allowed_hosts.clone(),
            cors_origins: args.cors_origins.clone(),
        },
        timeouts,
        hide_paths: args.hide_paths,
    };
    let (served, path) = match &args.root {
        Some(dir) => {
            if crate::engine::is_milvus_uri(dir) {
                return Err(CliError::new(
                    exit::USAGE,
                    "--root: a directory of index directories (a Milvus index is served with --path)",
                ));
            }
            let served = Served::Root {
                dir: dir.clone(),
                read_only: args.read_only,
                max_open: args.max_open,
            };
            (served, format!("the indexes under {}", display(dir)))
        }
        None => {
            let index = if args.read_only {
                ctx.open_reader()?
            } else {
                ctx.open_writer()?
            };
            // The index's own path: a Milvus URI without its credentials.
            let path = display(index.path());
            (Served::Index(Box::new(index)), path)
        }
    };
    let read_only = if args.read_only { " (read-only)" } else { "" };
    let served = crate::server::run_served(served, config, |addr| {
        eprintln!("iscc-vdb: serving {path}{read_only} on http://{addr}");
    });
    match served {
        Ok(()) => {
            eprintln!("iscc-vdb: stopped; indexes saved and closed");
            Ok(())
        }
        Err(ServerError::Engine(e)) => Err(e.into()),
        Err(e) => Err(CliError::new(exit::IO, e.to_string())),
    }
}
