//! The Milvus backend of [`super::IsccIndex`]: the same entries, search
//! semantics and results as the local backend, kept in the collections of a
//! Milvus server or cluster (`milvus://HOST:PORT/NAME`).
//!
//! Collections of index `NAME` (every field INT64 unless said otherwise):
//!
//! ```text
//! NAME__meta        key VARCHAR (primary), value VARCHAR (JSON)    realm, format, user metadata
//! NAME__entries     id (primary: the ISCC-ID's u64), json VARCHAR   the stored entries
//! NAME__instance    id (primary), w0, body VARCHAR (hex)            INSTANCE units
//! NAME__u{T}_{L}    id (primary), len, v BINARY_VECTOR(L)           unit type T (its header code),
//!                                                                   L = 64, 128, 192, 256
//! ```
//!
//! NPHD as plain Hamming, exactly: a query of `Lq` bits and a stored code
//! of `Lx` bits are compared on their first `min(Lq, Lx)` bits. `NAME__u{T}_{L}`
//! holds the first `L` bits of every code of type `T` with `Lx ≥ L` (`len`
//! = `Lx`). A query searches `_{Lq}` unfiltered (every code at least as
//! long) and `_{L}` filtered to `len == L` for each `L < Lq` (the shorter
//! codes, each in exactly one place); each group is a metric space and its
//! distance divided by its `L` is the NPHD, so merging the groups' top
//! lists gives the local engine's top list. Every collection carries a
//! vector field (Milvus requires one; the meta, entries and INSTANCE
//! collections carry the key's bytes).
//!
//! Writes are not one transaction (Milvus has none): an add writes the
//! unit and INSTANCE rows first and the entries row last, a remove deletes
//! the entries row first. The entries row is the commit: searches drop
//! matches without one (an add or remove cut short by a crash never shows
//! as a match that cannot be read), and repeating the add repairs it.
//! Searches are exact with BIN_FLAT, the default vector index; with
//! BIN_IVF_FLAT (`?index=ivf`, see `ann`) they probe `nprobe` lists unless
//! `exact` asks for every list. Granular features are stored with their entries but
//! not indexed on this backend: a search by features is refused.

mod ann;
mod conn;
mod page;
mod search;
mod uri;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use milvus::value::ValueVec;
use serde_json::Value;

use self::ann::Ann;
use self::conn::{Conn, Field, CHUNK};
use self::uri::MilvusUri;
use super::{
    parse_id_in, EngineError, IndexInfo, IndexOptions, IndexParams, SimprintCollisions,
    SimprintTypeInfo, UnitTypeInfo, ENGINE_FORMAT_VERSION,
};
use crate::codec::{IdGenerator, IsccId, Realm, UnitType};
use crate::index::CoalesceStats;
use crate::sync::RwLock;

/// The layout version of an index's collections.
const MILVUS_FORMAT: u32 = 1;
/// Bytes of a stored entry's JSON (the VARCHAR limit of Milvus).
pub(crate) const MAX_JSON: usize = 65_535;

const META_FIELDS: [Field; 3] = [
    Field::TextKey("key", 512),
    Field::Text("value", 65_535),
    Field::Bits("v", 64),
];
const ENTRY_FIELDS: [Field; 3] = [
    Field::Key("id"),
    Field::Text("json", 65_535),
    Field::Bits("v", 64),
];
const INSTANCE_FIELDS: [Field; 4] = [
    Field::Key("id"),
    Field::Int("w0"),
    Field::Text("body", 64),
    Field::Bits("v", 64),
];

/// The fields of a unit collection of `bits`-bit prefixes.
fn unit_fields(bits: i64) -> [Field; 3] {
    [Field::Key("id"), Field::Int("len"), Field::Bits("v", bits)]
}

/// An index on a Milvus server; see the module docs.
#[derive(Debug)]
pub(crate) struct MilvusIndex {
    conn: Conn,
    name: String,
    path: PathBuf,
    options: IndexOptions,
    realm: RwLock<Option<Realm>>,
    ids: IdGenerator,
    writer: Mutex<()>,
    closed: AtomicBool,
    /// The unit collections' vector index (see `ann`).
    ann: Ann,
    /// Lists an approximate search probes (`ann` BIN_IVF_FLAT).
    nprobe: usize,
    /// The URI's deadline of a call, also the longest wait for an index.
    timeout: std::time::Duration,
}

impl MilvusIndex {
    /// Connect and open index `NAME` of the URI: create it unless it
    /// exists (`existing`: it must; `read_only`: nothing is created).
    pub(crate) fn open(
        uri: &str,
        options: IndexOptions,
        existing: bool,
    ) -> Result<MilvusIndex, EngineError> {
        let parsed = MilvusUri::parse(uri)?;
        if let Some(r) = options.realm {
            Realm::new(r).map_err(|source| EngineError::Iscc {
                context: "option realm".into(),
                source,
            })?;
        }
        let conn = Conn::connect(&parsed)?;
        let name = parsed.name.clone();
        let meta = format!("{name}__meta");
        if !conn.exists(&meta)? {
            if existing || options.read_only {
                return Err(EngineError::NotFound(format!(
                    "index {name} on {} (no collection {meta})",
                    conn.server
                )));
            }
            conn.ensure(&meta, &META_FIELDS)?;
        }
        let ids =
            IdGenerator::new(options.hub_id, Realm::R0).map_err(|source| EngineError::Iscc {
                context: "option hub_id".into(),
                source,
            })?;
        let mut index = MilvusIndex {
            path: PathBuf::from(parsed.display()),
            conn,
            name,
            options,
            realm: RwLock::new(None),
            ids,
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
            ann: Ann::Flat,
            nprobe: 1,
            timeout: std::time::Duration::from_secs(parsed.timeout_s),
        };
        index.check_format()?;
        index.ann = index.check_ann(parsed.ann)?;
        index.nprobe = match (parsed.nprobe, index.ann) {
            (Some(n), _) => n,
            (None, Ann::Ivf { nlist }) => ann::default_nprobe(nlist),
            (None, Ann::Flat) => 1,
        };
        let realm = index.stored_realm()?;
        if let (Some(have), Some(want)) = (realm, index.options.realm) {
            if have.id() != want {
                return Err(EngineError::Invalid(format!(
                    "option realm {want}, but index {} holds realm {}",
                    index.path.display(),
                    have.id()
                )));
            }
        }
        *index.realm.write() = realm;
        Ok(index)
    }

    /// The stored layout version must be this build's (a new index gets it).
    fn check_format(&self) -> Result<(), EngineError> {
        match self.meta_get("ivdb:format")? {
            Some(v) if v.as_u64() == Some(u64::from(MILVUS_FORMAT)) => Ok(()),
            Some(v) => Err(EngineError::IncompatibleFormat {
                path: self.path.clone(),
                found: v.as_u64().and_then(|f| u32::try_from(f).ok()).unwrap_or(0),
                expected: MILVUS_FORMAT,
            }),
            None if self.options.read_only => Ok(()),
            None => self.meta_put("ivdb:format", &Value::from(MILVUS_FORMAT)),
        }
    }

    /// The vector index the unit collections have: as stored; `wanted` (the
    /// URI's) must be it. An index without one stored gets `wanted` (flat
    /// when not named) unless it has unit collections already, which were
    /// created flat.
    fn check_ann(&self, wanted: Option<Ann>) -> Result<Ann, EngineError> {
        let have = match self.meta_get("ivdb:ann")? {
            Some(v) => Ann::from_json(Some(&v))?,
            None => {
                let units = self.conn.collections(&format!("{}__u", self.name))?;
                if !units.is_empty() || self.options.read_only {
                    Ann::Flat
                } else {
                    let a = wanted.unwrap_or(Ann::Flat);
                    self.meta_put("ivdb:ann", &a.to_json())?;
                    a
                }
            }
        };
        match wanted {
            Some(w) if w != have => Err(EngineError::Invalid(format!(
                "{} has the vector index {}, not {} (it is chosen when the index is created)",
                self.path.display(),
                have.spelled(),
                w.spelled()
            ))),
            _ => Ok(have),
        }
    }

    /// The realm the index holds, as the server has it now (another
    /// server may have fixed it since this one opened).
    fn stored_realm(&self) -> Result<Option<Realm>, EngineError> {
        match self.meta_get("ivdb:realm")? {
            Some(v) => {
                let r = v
                    .as_u64()
                    .and_then(|r| u8::try_from(r).ok())
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "{}: stored realm {v} is not 0 or 1",
                            self.path.display()
                        ))
                    })?;
                Realm::new(r).map(Some).map_err(|source| EngineError::Iscc {
                    context: "stored realm".into(),
                    source,
                })
            }
            None => Ok(None),
        }
    }

    fn meta_name(&self) -> String {
        format!("{}__meta", self.name)
    }

    pub(crate) fn entries_name(&self) -> String {
        format!("{}__entries", self.name)
    }

    pub(crate) fn instance_name(&self) -> String {
        format!("{}__instance", self.name)
    }

    /// The collection of `bits`-bit prefixes of unit type `t`.
    pub(crate) fn unit_name(&self, t: UnitType, bits: usize) -> String {
        format!("{}__u{}_{bits}", self.name, t.code())
    }

    /// A metadata value.
    fn meta_get(&self, key: &str) -> Result<Option<Value>, EngineError> {
        let meta = self.meta_name();
        if !self.conn.exists(&meta)? {
            return Ok(None);
        }
        let expr = format!("key in [{}]", quote(key));
        let rows = self.conn.query(&meta, &expr, &["value"])?;
        let Some(ValueVec::String(values)) = rows.get("value") else {
            return Ok(None);
        };
        match values.first() {
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| EngineError::Json(format!("metadata {key}: {e}"))),
            None => Ok(None),
        }
    }

    fn meta_put(&self, key: &str, value: &Value) -> Result<(), EngineError> {
        let text = value.to_string();
        if text.len() > MAX_JSON || key.len() > 512 {
            return Err(EngineError::Invalid(format!(
                "metadata {key}: at most 512 bytes of key and {MAX_JSON} bytes of JSON on a Milvus index"
            )));
        }
        let meta = self.meta_name();
        self.conn.ensure(&meta, &META_FIELDS)?;
        self.conn.upsert(
            &meta,
            vec![
                META_FIELDS[0].column(vec![key.to_string()]),
                META_FIELDS[1].column(vec![text]),
                META_FIELDS[2].column(vec![0u8; 8]),
            ],
        )
    }

    fn check_open(&self) -> Result<(), EngineError> {
        super::check_state(&self.closed, self.options.read_only, false)
    }

    fn check_writable(&self) -> Result<(), EngineError> {
        super::check_state(&self.closed, self.options.read_only, true)
    }

    fn realm_or_default(&self) -> Realm {
        self.realm.read().unwrap_or(Realm::R0)
    }

    fn parse_id(&self, s: &str, context: &str) -> Result<IsccId, EngineError> {
        parse_id_in(s, context, *self.realm.read())
    }

    /// The error of an operation this backend does not offer.
    pub(crate) fn unsupported(&self, what: &str) -> EngineError {
        EngineError::Unsupported(format!(
            "{what} is not available on a Milvus index ({}): the server maintains its collections",
            self.path.display()
        ))
    }

    // ---- entries -------------------------------------------------------------

    /// The stored JSON of each key present (one query per chunk of keys).
    fn stored(&self, keys: &[u64]) -> Result<HashMap<u64, String>, EngineError> {
        let entries = self.entries_name();
        let mut out = HashMap::with_capacity(keys.len());
        if keys.is_empty() || !self.conn.exists(&entries)? {
            return Ok(out);
        }
        for chunk in keys.chunks(CHUNK) {
            let expr = format!("id in {}", int_list(chunk));
            let mut rows = self.conn.query(&entries, &expr, &["id", "json"])?;
            if let (Some(ValueVec::Long(ids)), Some(ValueVec::String(jsons))) =
                (rows.remove("id"), rows.remove("json"))
            {
                out.extend(ids.into_iter().map(|k| k as u64).zip(jsons));
            }
        }
        Ok(out)
    }

    /// The stored entry of an ISCC-ID, or `None`.
    pub(crate) fn get(&self, iscc_id: &str) -> Result<Option<Value>, EngineError> {
        Ok(self.get_many(&[iscc_id])?.pop().flatten())
    }

    /// [`MilvusIndex::get`] for many ISCC-IDs.
    pub(crate) fn get_many(&self, iscc_ids: &[&str]) -> Result<Vec<Option<Value>>, EngineError> {
        self.check_open()?;
        let ids: Vec<IsccId> = iscc_ids
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let context = if iscc_ids.len() == 1 {
                    "iscc_id".to_string()
                } else {
                    format!("iscc_ids[{i}]")
                };
                self.parse_id(s, &context)
            })
            .collect::<Result<_, _>>()?;
        let keys: Vec<u64> = ids.iter().map(|id| id.value()).collect();
        let found = self.stored(&keys)?;
        ids.iter()
            .map(|id| match found.get(&id.value()) {
                Some(json) => serde_json::from_str(json)
                    .map(Some)
                    .map_err(|e| EngineError::Json(format!("stored entry {id}: {e}"))),
                None => Ok(None),
            })
            .collect()
    }

    // ---- figures ---------------------------------------------------------------

    /// Number of entries.
    pub(crate) fn size(&self) -> Result<u64, EngineError> {
        self.check_open()?;
        self.conn.count(&self.entries_name())
    }

    /// Entries per similarity unit type (every unit has a row in its type's
    /// 64-bit collection).
    fn type_counts(&self) -> Result<BTreeMap<UnitType, u64>, EngineError> {
        let mut out = BTreeMap::new();
        for t in UnitType::all().into_iter().filter(|t| t.is_similarity()) {
            let n = self.conn.count(&self.unit_name(t, 64))?;
            if n > 0 {
                out.insert(t, n);
            }
        }
        Ok(out)
    }

    /// Unit types with at least one stored unit.
    pub(crate) fn unit_types(&self) -> Result<Vec<String>, EngineError> {
        self.check_open()?;
        let mut out: Vec<String> = self.type_counts()?.keys().map(|t| t.name()).collect();
        if self.conn.count(&self.instance_name())? > 0 {
            out.push(UnitType::INSTANCE.name());
        }
        out.sort();
        Ok(out)
    }

    /// Figures of the index, from the collections' row counts.
    pub(crate) fn info(&self) -> Result<IndexInfo, EngineError> {
        self.check_open()?;
        let counts = self.type_counts()?;
        let units = counts
            .iter()
            .map(|(t, n)| {
                (
                    t.name(),
                    UnitTypeInfo {
                        len: *n as usize,
                        entries: *n,
                        shards: 0,
                        tombstones: 0,
                        partitioned: 0,
                        memory_bytes: 0,
                    },
                )
            })
            .collect();
        *self.realm.write() = self.stored_realm()?;
        Ok(IndexInfo {
            path: self.path.clone(),
            size: self.conn.count(&self.entries_name())?,
            unit_types: self.unit_types()?,
            units,
            simprints: BTreeMap::new(),
            realm: self.realm.read().map(Realm::id),
            max_dim: self.options.params.max_dim,
            read_only: self.options.read_only,
            in_memory: false,
            durable: true,
            journal_pending: 0,
            store_bytes: 0,
            format_version: ENGINE_FORMAT_VERSION,
            repairs: Vec::new(),
        })
    }

    /// No simprint indexes on this backend.
    pub(crate) fn simprint_types(&self) -> Result<BTreeMap<String, SimprintTypeInfo>, EngineError> {
        self.check_open()?;
        Ok(BTreeMap::new())
    }

    pub(crate) fn simprint_collisions(
        &self,
        _kind: &str,
        _simprint: &str,
    ) -> Result<SimprintCollisions, EngineError> {
        Err(self.unsupported("simprint lookup (granular features)"))
    }

    /// A user metadata value.
    pub(crate) fn get_metadata(&self, key: &str) -> Result<Option<Value>, EngineError> {
        self.check_open()?;
        self.meta_get(&format!("user:{key}"))
    }

    /// Set a user metadata value.
    pub(crate) fn put_metadata(&self, key: &str, value: &Value) -> Result<(), EngineError> {
        self.check_writable()?;
        self.meta_put(&format!("user:{key}"), value)
    }

    pub(crate) fn params(&self) -> IndexParams {
        self.options.params
    }

    /// `milvus://HOST:PORT/NAME`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    // ---- maintenance -------------------------------------------------------

    /// Flush every collection of the index (seals growing segments).
    pub(crate) fn save(&self) -> Result<(), EngineError> {
        self.check_writable()?;
        let names = self.conn.collections(&format!("{}__", self.name))?;
        self.conn.flush(&names)
    }

    /// Wait until the server reports the unit collections' vector indexes
    /// built (see `Conn::wait_indexed`).
    pub(crate) fn wait_background(&self) -> Result<(), EngineError> {
        self.check_open()?;
        let names = self.conn.collections(&format!("{}__u", self.name))?;
        self.conn.wait_indexed(&names, self.timeout)
    }

    pub(crate) fn rebuild(&self) -> Result<(), EngineError> {
        Err(self.unsupported("rebuild"))
    }

    pub(crate) fn rebuild_unit_types(&self, _unit_types: &[&str]) -> Result<(), EngineError> {
        Err(self.unsupported("rebuild"))
    }

    pub(crate) fn compact(&self) -> Result<usize, EngineError> {
        Err(self.unsupported("compact"))
    }

    /// Every read goes to the server: nothing to refresh.
    pub(crate) fn refresh(&self) -> Result<bool, EngineError> {
        self.check_open()?;
        *self.realm.write() = self.stored_realm()?;
        Ok(false)
    }

    pub(crate) fn set_coalescing(&self, _on: bool) {}

    pub(crate) fn coalesce_stats(&self) -> CoalesceStats {
        CoalesceStats::default()
    }

    /// Close: later calls return `Closed` (writes were acknowledged by
    /// the server as they happened).
    pub(crate) fn close(&self) -> Result<(), EngineError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    /// Drop every collection of index `NAME` of the URI: how many.
    pub(crate) fn drop_index(uri: &str) -> Result<usize, EngineError> {
        let parsed = MilvusUri::parse(uri)?;
        let conn = Conn::connect(&parsed)?;
        let names = conn.collections(&format!("{}__", parsed.name))?;
        for c in &names {
            conn.drop_collection(c)?;
        }
        Ok(names.len())
    }
}

/// `[1,2,3]` for a Milvus expression.
pub(crate) fn int_list(keys: &[u64]) -> String {
    let items: Vec<String> = keys.iter().map(|k| (*k as i64).to_string()).collect();
    format!("[{}]", items.join(","))
}

/// A string literal for a Milvus expression.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}
