//! Writes on the Milvus backend: `add` and `remove` (see the module docs
//! of `milvus` for their order and what a crash leaves).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::super::entry::prepare_all;
use super::super::write::{assign_ids, batch_realm, remove_report, rows_to_write};
use super::super::{stored_units, EngineError, RemoveReport};
use super::ann::Ann;
use super::conn::Field;
use super::{unit_fields, MilvusIndex, CHUNK, ENTRY_FIELDS, INSTANCE_FIELDS, MAX_JSON};
use crate::codec::{IsccId, Unit, UnitType};
use crate::sync::lock;

/// The rows going into one unit collection, column by column.
#[derive(Default)]
struct UnitRows {
    keys: Vec<i64>,
    /// Stored code lengths in bits.
    lens: Vec<i64>,
    /// The prefixes, packed back to back.
    prefixes: Vec<u8>,
}

/// Rows to put into and take out of each collection.
#[derive(Default)]
struct Plan {
    /// Per unit collection `(type, bits)`.
    units: BTreeMap<(UnitType, usize), UnitRows>,
    /// Per unit collection: keys whose row goes.
    unit_deletes: BTreeMap<(UnitType, usize), Vec<u64>>,
    /// INSTANCE rows: keys, first words, bodies (hex).
    instances: (Vec<i64>, Vec<i64>, Vec<String>, Vec<u8>),
    instance_deletes: Vec<u64>,
    /// Entries rows: keys and JSON.
    entries: (Vec<i64>, Vec<String>),
}

/// The first 8 bytes of `body` as the INSTANCE row's `w0`.
fn first_word(body: &[u8]) -> i64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&body[..8]);
    i64::from_be_bytes(w)
}

impl Plan {
    /// The rows of one unit `u` of entry `key`: a prefix row in each
    /// collection of its type up to its own length.
    fn put_unit(&mut self, key: u64, u: &Unit) {
        let body = u.body();
        let bits = body.len() * 8;
        for l in (8..=body.len()).step_by(8) {
            let e = self.units.entry((u.unit_type(), l * 8)).or_default();
            e.keys.push(key as i64);
            e.lens.push(bits as i64);
            e.prefixes.extend_from_slice(&body[..l]);
        }
    }

    /// Take out the rows of old unit `u` that the new version (of `new_len`
    /// bytes of that type, 0 when it has none) does not overwrite.
    fn drop_unit(&mut self, key: u64, u: &Unit, new_len: usize) {
        for l in (8..=u.body().len()).step_by(8).filter(|l| *l > new_len) {
            self.unit_deletes
                .entry((u.unit_type(), l * 8))
                .or_default()
                .push(key);
        }
    }

    /// An entry changing from `old` units to `new` ones.
    fn change(&mut self, key: u64, old: &[Unit], new: &[Unit]) {
        let new_len: HashMap<UnitType, usize> = new
            .iter()
            .map(|u| (u.unit_type(), u.body().len()))
            .collect();
        for u in old {
            let len = new_len.get(&u.unit_type()).copied().unwrap_or(0);
            if u.unit_type().is_instance() {
                if len == 0 {
                    self.instance_deletes.push(key);
                }
            } else {
                self.drop_unit(key, u, len);
            }
        }
        for u in new {
            if u.unit_type().is_instance() {
                let body = u.body();
                self.instances.0.push(key as i64);
                self.instances.1.push(first_word(body));
                self.instances.2.push(hex(body));
                self.instances.3.extend_from_slice(&body[..8]);
            } else if u.unit_type().is_similarity() {
                self.put_unit(key, u);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl MilvusIndex {
    /// Add entries given as one JSON text.
    pub(crate) fn add_json(&self, json: &str) -> Result<Vec<String>, EngineError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| EngineError::Json(e.to_string()))?;
        self.add_values(&value)
    }

    /// Add entries given as one parsed JSON value.
    pub(crate) fn add_values(&self, value: &Value) -> Result<Vec<String>, EngineError> {
        let list: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        self.add(&list)
    }

    /// Add entries: the whole batch is validated (entries, realm, sizes)
    /// before anything is written; then unit and INSTANCE rows, then the
    /// entries rows (see the module docs).
    pub(crate) fn add(&self, entries: &[&Value]) -> Result<Vec<String>, EngineError> {
        self.check_writable()?;
        let prepared = prepare_all(entries)?;
        let _w = lock(&self.writer);
        self.check_writable()?;
        // Another server may have fixed the realm since this one looked.
        let fixed = match *self.realm.read() {
            Some(r) => Some(r),
            None => self.stored_realm()?,
        };
        let realm = batch_realm(&prepared, fixed, &self.options, &self.ids)?;
        let ids = assign_ids(&prepared, realm, fixed.is_none(), &self.options, &self.ids)?;
        let rows = rows_to_write(&ids, &prepared);
        for (i, (key, json, _)) in rows.iter().enumerate() {
            if json.len() > MAX_JSON {
                return Err(EngineError::Invalid(format!(
                    "entry {} ({} bytes of JSON): a Milvus index stores at most {MAX_JSON} bytes per entry (batch item {i})",
                    IsccId::from_u64(*key, realm),
                    json.len()
                )));
            }
        }
        let keys: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let old = self.stored(&keys)?;
        let mut plan = Plan::default();
        for (key, json, p) in &rows {
            let json = String::from_utf8_lossy(json).into_owned();
            let old_units = match old.get(key) {
                Some(o) if *o == json => continue,
                Some(o) => stored_units(o.as_bytes())?,
                None => Vec::new(),
            };
            plan.change(*key, &old_units, &p.units);
            plan.entries.0.push(*key as i64);
            plan.entries.1.push(json);
        }
        if fixed.is_none() {
            self.meta_put("ivdb:realm", &Value::from(realm.id()))?;
            *self.realm.write() = Some(realm);
        }
        self.write_plan(plan)?;
        Ok(ids.iter().map(IsccId::to_string).collect())
    }

    /// Carry out a plan: unit and INSTANCE rows, then the entries rows.
    fn write_plan(&self, plan: Plan) -> Result<(), EngineError> {
        // The collections this plan writes to, created side by side: each
        // takes the server seconds to create, index and load (2k corpus
        // records into a new index: 115 s one after the other).
        let mut needed: Vec<(String, Vec<Field>, Ann)> = plan
            .units
            .keys()
            .map(|&(t, bits)| {
                let fields = unit_fields(bits as i64).to_vec();
                (self.unit_name(t, bits), fields, self.ann)
            })
            .collect();
        if !plan.instances.0.is_empty() {
            needed.push((self.instance_name(), INSTANCE_FIELDS.to_vec(), Ann::Flat));
        }
        if !plan.entries.0.is_empty() {
            needed.push((self.entries_name(), ENTRY_FIELDS.to_vec(), Ann::Flat));
        }
        self.conn.ensure_all(&needed)?;
        for ((t, bits), keys) in &plan.unit_deletes {
            let name = self.unit_name(*t, *bits);
            if self.conn.exists(&name)? {
                let keys: Vec<i64> = keys.iter().map(|k| *k as i64).collect();
                self.conn.delete(&name, &keys)?;
            }
        }
        for (
            (t, bits),
            UnitRows {
                keys,
                lens,
                prefixes,
            },
        ) in plan.units
        {
            let name = self.unit_name(t, bits);
            let fields = unit_fields(bits as i64);
            self.conn.ensure_indexed(&name, &fields, self.ann)?;
            let width = bits / 8;
            for start in (0..keys.len()).step_by(CHUNK) {
                let end = (start + CHUNK).min(keys.len());
                self.conn.upsert(
                    &name,
                    vec![
                        fields[0].column(keys[start..end].to_vec()),
                        fields[1].column(lens[start..end].to_vec()),
                        fields[2].column(prefixes[start * width..end * width].to_vec()),
                    ],
                )?;
            }
        }
        let instance = self.instance_name();
        if !plan.instance_deletes.is_empty() && self.conn.exists(&instance)? {
            let keys: Vec<i64> = plan.instance_deletes.iter().map(|k| *k as i64).collect();
            self.conn.delete(&instance, &keys)?;
        }
        let (ik, iw, ib, iv) = plan.instances;
        if !ik.is_empty() {
            self.conn.ensure(&instance, &INSTANCE_FIELDS)?;
            for start in (0..ik.len()).step_by(CHUNK) {
                let end = (start + CHUNK).min(ik.len());
                self.conn.upsert(
                    &instance,
                    vec![
                        INSTANCE_FIELDS[0].column(ik[start..end].to_vec()),
                        INSTANCE_FIELDS[1].column(iw[start..end].to_vec()),
                        INSTANCE_FIELDS[2].column(ib[start..end].to_vec()),
                        INSTANCE_FIELDS[3].column(iv[start * 8..end * 8].to_vec()),
                    ],
                )?;
            }
        }
        let (keys, jsons) = plan.entries;
        if !keys.is_empty() {
            let entries = self.entries_name();
            self.conn.ensure(&entries, &ENTRY_FIELDS)?;
            for start in (0..keys.len()).step_by(CHUNK) {
                let end = (start + CHUNK).min(keys.len());
                let vectors: Vec<u8> = keys[start..end]
                    .iter()
                    .flat_map(|k| k.to_be_bytes())
                    .collect();
                self.conn.upsert(
                    &entries,
                    vec![
                        ENTRY_FIELDS[0].column(keys[start..end].to_vec()),
                        ENTRY_FIELDS[1].column(jsons[start..end].to_vec()),
                        ENTRY_FIELDS[2].column(vectors),
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Remove entries; the number of index mappings removed.
    pub(crate) fn remove(&self, iscc_ids: &[&str]) -> Result<usize, EngineError> {
        self.remove_report(iscc_ids).map(|r| r.mappings)
    }

    /// Remove entries: the entries rows first (the commit), then their unit
    /// and INSTANCE rows.
    pub(crate) fn remove_report(&self, iscc_ids: &[&str]) -> Result<RemoveReport, EngineError> {
        self.check_writable()?;
        let ids = super::super::parse_ids_in(iscc_ids, *self.realm.read())?;
        let mut keys: Vec<u64> = ids.iter().map(|id| id.value()).collect();
        keys.sort_unstable();
        keys.dedup();
        let _w = lock(&self.writer);
        self.check_writable()?;
        let old = self.stored(&keys)?;
        let mut plan = Plan::default();
        let mut mappings = 0;
        let mut removed = HashSet::new();
        for (key, json) in &old {
            let units = stored_units(json.as_bytes())?;
            mappings += units.len();
            plan.change(*key, &units, &[]);
            removed.insert(*key);
        }
        let gone: Vec<i64> = old.keys().map(|k| *k as i64).collect();
        if !gone.is_empty() {
            self.conn.delete(&self.entries_name(), &gone)?;
        }
        self.write_plan(plan)?;
        Ok(remove_report(&ids, &removed, mappings))
    }
}
