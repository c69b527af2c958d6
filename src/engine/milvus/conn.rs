//! The connection to a Milvus server: a gRPC client (milvus-sdk-rust's v1
//! client, which Milvus 2.3 and later answer) driven by a runtime of its
//! own, so every call here is blocking like the rest of the engine.
//!
//! Collections are created with strong consistency (a read sees every
//! write acknowledged before it, from any client: servers against one
//! cluster stay stateless), an index on their vector field (BIN_FLAT, or
//! the unit collections' own: see `ann`; Milvus loads nothing without an
//! index) and are loaded at once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use milvus::client::Client;
use milvus::data::FieldColumn;
use milvus::error::Error as SdkError;
use milvus::index::{IndexParams, MetricType};
use milvus::mutate::DeleteOptions;
use milvus::options::CreateCollectionOptions;
use milvus::options::LoadOptions;
use milvus::proto::common::{ConsistencyLevel, LoadState};
use milvus::query::{QueryOptions, SearchOptions};
use milvus::schema::{CollectionSchemaBuilder, FieldSchema};
use milvus::value::{Value, ValueVec};

use super::super::{EngineError, ErrorKind};
use super::ann::Ann;
use super::uri::MilvusUri;
use crate::sync::lock;

/// Most rows per insert, upsert, delete or `in [...]` query (gRPC messages
/// stay far under Milvus's 64 MiB limit: a row is at most ~64 KiB of JSON).
pub(crate) const CHUNK: usize = 500;

/// Attempts of a call that failed on the way (see `Conn::run`).
const ATTEMPTS: u32 = 3;

/// The pause before a second attempt (doubled before a third).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Most query vectors per search call.
const MAX_NQ: usize = 1000;

/// Most rows a search call may return (query vectors × limit): ~3 MB of
/// answer, far under gRPC's message limit.
const MAX_ROWS: usize = 262_144;

/// A field of a collection: its name and type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    /// INT64 primary key.
    Key(&'static str),
    /// VARCHAR primary key of at most this many bytes.
    TextKey(&'static str, i32),
    Int(&'static str),
    /// VARCHAR of at most this many bytes.
    Text(&'static str, i32),
    /// BINARY_VECTOR of this many bits.
    Bits(&'static str, i64),
}

impl Field {
    fn schema(self) -> FieldSchema {
        match self {
            Field::Key(n) => FieldSchema::new_primary_int64(n, "", false),
            Field::TextKey(n, len) => FieldSchema::new_primary_varchar(n, "", false, len),
            Field::Int(n) => FieldSchema::new_int64(n, ""),
            Field::Text(n, len) => FieldSchema::new_varchar(n, "", len),
            Field::Bits(n, dim) => FieldSchema::new_binary_vector(n, "", dim),
        }
    }

    /// A column of this field.
    pub(crate) fn column(self, values: impl Into<ValueVec>) -> FieldColumn {
        FieldColumn::new(&self.schema(), values)
    }
}

/// A connection; see the module docs.
pub(crate) struct Conn {
    rt: tokio::runtime::Runtime,
    client: Client,
    /// The longest a call may wait for its answer (the URI's `timeout_s`).
    deadline: Duration,
    /// Milvus's consistency level of reads (the URI's `consistency`).
    level: i32,
    /// Replicas a load asks for (the URI's `replicas`).
    replicas: i32,
    /// `milvus://HOST:PORT/NAME`, for messages.
    pub(crate) server: String,
    /// Collections known to exist and be loaded.
    ready: std::sync::Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("server", &self.server)
            .finish()
    }
}

impl Conn {
    /// Connect (fails at once when nothing answers).
    pub(crate) fn connect(uri: &MilvusUri) -> Result<Conn, EngineError> {
        let server = uri.display();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ivdb-milvus")
            .enable_all()
            .build()
            .map_err(|e| EngineError::Remote {
                server: server.clone(),
                message: format!("cannot start the client runtime: {e}"),
                kind: ErrorKind::Internal,
            })?;
        let endpoint = uri.endpoint();
        let timeout = Duration::from_secs(uri.timeout_s);
        let (user, password) = (uri.user.clone(), uri.password.clone());
        let client = block(&rt, Client::with_timeout(endpoint, timeout, user, password))
            .map_err(|e| remote(&server, "cannot connect", e))?;
        Ok(Conn {
            rt,
            client,
            server,
            deadline: timeout,
            level: uri.consistency.level(),
            replicas: i32::try_from(uri.replicas).unwrap_or(1),
            ready: Default::default(),
        })
    }

    /// Run one call of the client to its end, or fail after the URI's
    /// `timeout_s` (the SDK sets no deadline on a call: a server that
    /// stops answering would otherwise hang the caller for good). A call
    /// that fails on the way (no answer, transport, a shard between query
    /// nodes) is made again, [`ATTEMPTS`] times in all: every call here is
    /// idempotent (upserts, deletes by key, reads; a create finds what an
    /// earlier attempt made), and a cluster losing a query node answers
    /// again once it has moved the node's shards.
    fn run<T, F>(&self, what: &str, call: impl Fn() -> F) -> Result<T, EngineError>
    where
        F: Future<Output = Result<T, SdkError>> + Send,
        T: Send,
    {
        self.run_within(what, call, self.deadline)
    }

    /// [`Conn::run`] with a deadline of its own per attempt.
    fn run_within<T, F>(
        &self,
        what: &str,
        call: impl Fn() -> F,
        deadline: Duration,
    ) -> Result<T, EngineError>
    where
        F: Future<Output = Result<T, SdkError>> + Send,
        T: Send,
    {
        let mut attempt = 1;
        loop {
            let fut = call();
            let timed = async move {
                // The timer needs the runtime's context: entered here, inside it.
                tokio::time::timeout(deadline, fut).await
            };
            let (error, again) = match block(&self.rt, timed) {
                Ok(Ok(done)) => return Ok(done),
                Ok(Err(e)) => {
                    let again = transient(&e);
                    (remote(&self.server, what, e), again)
                }
                Err(_) => (
                    EngineError::Remote {
                        server: self.server.clone(),
                        message: format!(
                            "{what}: no answer within {} s (the URI's timeout_s sets the deadline)",
                            deadline.as_secs()
                        ),
                        kind: ErrorKind::Io,
                    },
                    true,
                ),
            };
            if !again || attempt >= ATTEMPTS {
                return Err(error);
            }
            std::thread::sleep(RETRY_PAUSE * attempt);
            attempt += 1;
        }
    }

    /// Every collection whose name starts with `prefix`.
    pub(crate) fn collections(&self, prefix: &str) -> Result<Vec<String>, EngineError> {
        let all = self.run("list collections", || self.client.list_collections())?;
        Ok(all.into_iter().filter(|c| c.starts_with(prefix)).collect())
    }

    /// True when `name` exists (and, from now on, is loaded).
    pub(crate) fn exists(&self, name: &str) -> Result<bool, EngineError> {
        if lock(&self.ready).contains(name) {
            return Ok(true);
        }
        if !self.run("has collection", || self.client.has_collection(name))? {
            return Ok(false);
        }
        self.load(name)?;
        Ok(true)
    }

    /// Load `name` into the query nodes unless it is loaded, and wait for
    /// it: a large collection takes minutes, so the deadline is 20 times a
    /// call's. A loaded collection keeps its replicas (Milvus refuses
    /// another number while it is loaded).
    fn load(&self, name: &str) -> Result<(), EngineError> {
        let state = self.run(&format!("load state of {name}"), || {
            self.client.get_load_state(name, None)
        })?;
        if state != LoadState::Loaded {
            self.run_within(
                &format!("load collection {name}"),
                || {
                    self.client.load_collection(
                        name,
                        Some(LoadOptions::default().replica_number(self.replicas)),
                    )
                },
                self.deadline * 20,
            )?;
        }
        lock(&self.ready).insert(name.to_string());
        Ok(())
    }

    /// Create `name` with `fields` (the last one the vector field) unless it
    /// exists; then it is indexed and loaded. Another client creating it at
    /// the same time is no error.
    pub(crate) fn ensure(&self, name: &str, fields: &[Field]) -> Result<(), EngineError> {
        self.ensure_indexed(name, fields, Ann::Flat)
    }

    /// [`Conn::ensure_indexed`] for each of `collections`, those missing
    /// created side by side (a thread each: the server spends seconds on
    /// each, mostly waiting); the first error is returned.
    pub(crate) fn ensure_all(
        &self,
        collections: &[(String, Vec<Field>, Ann)],
    ) -> Result<(), EngineError> {
        let mut missing = Vec::new();
        for c in collections {
            if !self.exists(&c.0)? {
                missing.push(c);
            }
        }
        std::thread::scope(|s| {
            let running: Vec<_> = missing
                .iter()
                .map(|(name, fields, ann)| s.spawn(move || self.ensure_indexed(name, fields, *ann)))
                .collect();
            running
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect::<Result<Vec<()>, EngineError>>()
                .map(drop)
        })
    }

    /// [`Conn::ensure`] with `ann` as the vector field's index.
    pub(crate) fn ensure_indexed(
        &self,
        name: &str,
        fields: &[Field],
        ann: Ann,
    ) -> Result<(), EngineError> {
        if self.exists(name)? {
            return Ok(());
        }
        let mut builder = CollectionSchemaBuilder::new(name, "iscc-vdb");
        for f in fields {
            builder.add_field(f.schema());
        }
        let schema = builder
            .build()
            .map_err(|e| remote(&self.server, &format!("schema of {name}"), e))?;
        let options = CreateCollectionOptions::with_consistency_level(ConsistencyLevel::Strong);
        let created = self.run(&format!("create collection {name}"), || {
            self.client.create_collection(schema.clone(), Some(options))
        });
        if let Err(e) = created {
            if !self.run("has collection", || self.client.has_collection(name))? {
                return Err(e);
            }
        }
        let Some(Field::Bits(vector, _)) = fields.last() else {
            return Err(EngineError::Remote {
                server: self.server.clone(),
                message: format!("collection {name}: no vector field (a bug)"),
                kind: ErrorKind::Internal,
            });
        };
        let (kind, build) = ann.milvus();
        let params = IndexParams::new(
            format!("{vector}_index"),
            kind,
            MetricType::HAMMING,
            build.into_iter().collect(),
        );
        let indexed = self.run(&format!("index collection {name}"), || {
            self.client.create_index(name, *vector, params.clone())
        });
        if let Err(e) = indexed {
            // Someone else indexed it first: loading tells.
            if self.load(name).is_err() {
                return Err(e);
            }
        }
        self.load(name)
    }

    /// Drop a collection (tests and the index's own removal).
    pub(crate) fn drop_collection(&self, name: &str) -> Result<(), EngineError> {
        lock(&self.ready).remove(name);
        if self.run("has collection", || self.client.has_collection(name))? {
            self.run(&format!("drop collection {name}"), || {
                self.client.drop_collection(name)
            })?;
        }
        Ok(())
    }

    /// Insert or replace rows (by primary key).
    pub(crate) fn upsert(&self, name: &str, columns: Vec<FieldColumn>) -> Result<(), EngineError> {
        if columns.first().is_none_or(|c| c.len() == 0) {
            return Ok(());
        }
        self.run(&format!("upsert into {name}"), || {
            self.client
                .upsert(name, columns.clone(), None::<milvus::mutate::UpsertOptions>)
        })?;
        Ok(())
    }

    /// Delete rows by INT64 primary key.
    pub(crate) fn delete(&self, name: &str, ids: &[i64]) -> Result<(), EngineError> {
        for chunk in ids.chunks(CHUNK) {
            let options = DeleteOptions::with_ids(ValueVec::Long(chunk.to_vec()));
            self.run(&format!("delete from {name}"), || {
                self.client.delete(name, &options)
            })?;
        }
        Ok(())
    }

    /// Rows matching `expr`: the requested columns by name.
    pub(crate) fn query(
        &self,
        name: &str,
        expr: &str,
        fields: &[&str],
    ) -> Result<HashMap<String, ValueVec>, EngineError> {
        let options =
            QueryOptions::with_output_fields(fields.iter().map(|f| f.to_string()).collect())
                .consistency_level(self.level);
        let columns = self.run(&format!("query {name}"), || {
            self.client.query(name, expr, &options)
        })?;
        Ok(columns.into_iter().map(|c| (c.name, c.value)).collect())
    }

    /// Up to `limit` (at most 16,384) values of the INT64 primary key `id`
    /// of rows matching `expr`, in no particular order.
    pub(crate) fn query_keys(
        &self,
        name: &str,
        expr: &str,
        limit: usize,
    ) -> Result<Vec<i64>, EngineError> {
        let options = QueryOptions::with_output_fields(vec!["id".to_string()])
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .consistency_level(self.level);
        let columns = self.run(&format!("query {name}"), || {
            self.client.query(name, expr, &options)
        })?;
        Ok(columns
            .into_iter()
            .find(|c| c.name == "id")
            .and_then(|c| match c.value {
                ValueVec::Long(ids) => Some(ids),
                _ => None,
            })
            .unwrap_or_default())
    }

    /// Rows of `name` matching `expr`.
    pub(crate) fn count_where(&self, name: &str, expr: &str) -> Result<u64, EngineError> {
        self.counted(name, expr, false)
    }

    /// Rows of a collection (0 when it does not exist).
    pub(crate) fn count(&self, name: &str) -> Result<u64, EngineError> {
        if !self.exists(name)? {
            return Ok(0);
        }
        let n = self.run(&format!("count {name}"), || self.client.count(name))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Top `limit` rows by Hamming distance for each of `queries` (each
    /// `bytes` long) in the vector field `v` of `name`, rows restricted by
    /// `filter` (empty: all), probing `nprobe` lists of an IVF index: per
    /// query, `(key, distance)` pairs.
    pub(crate) fn search(
        &self,
        name: &str,
        queries: &[&[u8]],
        limit: usize,
        filter: &str,
        nprobe: Option<usize>,
    ) -> Result<Vec<Vec<(i64, u32)>>, EngineError> {
        let mut out = Vec::with_capacity(queries.len());
        let per_call = (MAX_ROWS / limit.max(1)).clamp(1, MAX_NQ);
        for chunk in queries.chunks(per_call) {
            let data: Vec<Value<'_>> = chunk.iter().map(|q| Value::from(*q)).collect();
            // Built per attempt: the SDK's options are not `Clone`.
            let options = || {
                let mut options = SearchOptions::new()
                    .limit(limit)
                    .add_param("anns_field", "v")
                    .add_param("metric_type", "HAMMING")
                    .consistency_level(self.level);
                if !filter.is_empty() {
                    options = options.filter(filter.to_string());
                }
                if let Some(n) = nprobe {
                    options = options.add_param("nprobe", n.to_string());
                }
                options
            };
            let results = self.run(&format!("search {name}"), || {
                self.client.search(name, data.clone(), Some(options()))
            })?;
            if results.len() != chunk.len() {
                return Err(EngineError::Remote {
                    server: self.server.clone(),
                    message: format!(
                        "search {name}: {} results for {} queries",
                        results.len(),
                        chunk.len()
                    ),
                    kind: ErrorKind::Io,
                });
            }
            for r in results {
                let hits =
                    r.id.iter()
                        .zip(&r.score)
                        .filter_map(|(id, score)| match id {
                            Value::Long(k) => Some((*k, score.round() as u32)),
                            _ => None,
                        })
                        .collect();
                out.push(hits);
            }
        }
        Ok(out)
    }

    /// Wait until Milvus reports the vector index of each of `names` built
    /// (state Finished; it builds them in the background and scans the
    /// segments not indexed yet), at most `timeout` per collection.
    pub(crate) fn wait_indexed(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<(), EngineError> {
        use milvus::proto::common::IndexState;
        for name in names {
            let start = std::time::Instant::now();
            loop {
                let infos = self.run(&format!("describe the index of {name}"), || {
                    self.client.describe_index(name.as_str(), "v")
                })?;
                match infos.first().map(|i| i.state()) {
                    None | Some(IndexState::Finished) => break,
                    Some(IndexState::Failed) => {
                        return Err(EngineError::Remote {
                            server: self.server.clone(),
                            message: format!("building the index of {name} failed"),
                            kind: ErrorKind::Io,
                        })
                    }
                    Some(_) if start.elapsed() >= timeout => {
                        return Err(EngineError::Remote {
                            server: self.server.clone(),
                            message: format!(
                                "the index of {name} was not built within {} s",
                                timeout.as_secs()
                            ),
                            kind: ErrorKind::Io,
                        })
                    }
                    Some(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        Ok(())
    }

    /// Seal the collections' growing segments and wait until the query
    /// nodes serve every row from sealed ones (what `save` means here: the
    /// server's log already holds every acknowledged write; sealed
    /// segments are what Milvus indexes, growing ones it scans). Milvus's
    /// flush returns at once; the wait compares each collection's rows
    /// with those a query ignoring growing segments counts, at most 20
    /// times a call's deadline.
    pub(crate) fn flush(&self, names: &[String]) -> Result<(), EngineError> {
        if names.is_empty() {
            return Ok(());
        }
        self.run("flush", || self.client.flush_collections(names.to_vec()))?;
        let start = std::time::Instant::now();
        for name in names {
            let all = self.counted(name, "", false)?;
            loop {
                let sealed = self.counted(name, "", true)?;
                if sealed >= all {
                    break;
                }
                if start.elapsed() >= self.deadline * 20 {
                    return Err(EngineError::Remote {
                        server: self.server.clone(),
                        message: format!(
                            "flush {name}: {sealed} of {all} rows sealed after {} s",
                            start.elapsed().as_secs()
                        ),
                        kind: ErrorKind::Io,
                    });
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// `count(*)` of the rows of `name` matching `expr` (empty: all), of
    /// sealed segments only with `sealed_only`.
    fn counted(&self, name: &str, expr: &str, sealed_only: bool) -> Result<u64, EngineError> {
        let options = QueryOptions::with_output_fields(vec!["count(*)".to_string()])
            .consistency_level(self.level)
            .ignore_growing(sealed_only);
        let columns = self.run(&format!("count {name}"), || {
            self.client.query(name, expr, &options)
        })?;
        match columns.into_iter().next().map(|c| c.value) {
            Some(ValueVec::Long(n)) => Ok(n.first().map_or(0, |&n| u64::try_from(n).unwrap_or(0))),
            other => Err(EngineError::Remote {
                server: self.server.clone(),
                message: format!("count {name}: an answer without a count ({other:?})"),
                kind: ErrorKind::Io,
            }),
        }
    }
}

/// Run `fut` on `rt`; from inside another runtime (an async caller), on a
/// thread of its own, since a runtime cannot block inside another one.
fn block<F>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(fut))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    } else {
        rt.block_on(fut)
    }
}

/// True for a failure on the way, worth another attempt: transport, or a
/// server that could not reach a shard (a query node lost or moving).
fn transient(e: &SdkError) -> bool {
    match e {
        SdkError::Communication(_) | SdkError::Grpc(_) => true,
        SdkError::Server(_, message) => {
            let m = message.to_ascii_lowercase();
            [
                "shard",
                "leader",
                "unavailable",
                "not available",
                "node",
                "channel",
            ]
            .iter()
            .any(|w| m.contains(w))
        }
        _ => false,
    }
}

/// An SDK error as the engine's: unreachable and transport failures are
/// `Io`, refusals by the server `Io` too unless they name input.
fn remote(server: &str, what: &str, e: SdkError) -> EngineError {
    let (kind, message) = match &e {
        SdkError::Communication(_) | SdkError::Grpc(_) => (
            ErrorKind::Io,
            format!("{what}: the server is unreachable or failed: {e}"),
        ),
        SdkError::InvalidParameter(..) | SdkError::Schema(_) => {
            (ErrorKind::InvalidArgument, format!("{what}: {e}"))
        }
        _ => (ErrorKind::Io, format!("{what}: {e}")),
    };
    EngineError::Remote {
        server: server.to_string(),
        message,
        kind,
    }
}
