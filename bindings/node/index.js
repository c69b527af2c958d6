'use strict';
// Node.js binding of iscc-vdb over its C ABI (libiscc_vdb), with koffi.
//
// The library is found through ISCC_VDB_LIB (a path to libiscc_vdb.so), or
// in this repository's cargo output (target/debug, then target/release).
// Every operation exists synchronously and as a Promise (`…Async`, run on
// koffi's worker threads; the index handle is safe to use from many threads).

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

function findLibrary() {
  if (process.env.ISCC_VDB_LIB) return process.env.ISCC_VDB_LIB;
  const root = path.resolve(__dirname, '..', '..', 'target');
  for (const profile of ['debug', 'release']) {
    const candidate = path.join(root, profile, 'libiscc_vdb.so');
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(
    'iscc-vdb: libiscc_vdb.so not found; run `cargo build --lib` in the repository or set ISCC_VDB_LIB');
}

// The header is the one description of the C ABI: every function this
// binding calls is declared from its prototype there and the ABI version
// comes from it; status names come from the library (ivdb_status_str), so
// nothing here restates a signature or a number.
function findHeader() {
  if (process.env.ISCC_VDB_HEADER) return process.env.ISCC_VDB_HEADER;
  const candidates = [
    path.join(__dirname, 'iscc_vdb.h'),
    path.resolve(__dirname, '..', '..', 'include', 'iscc_vdb.h'),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error('iscc-vdb: iscc_vdb.h not found; set ISCC_VDB_HEADER');
  return found;
}

const header = fs.readFileSync(findHeader(), 'utf8');

/** Every `#define NAME <integer>` of the header. */
const DEFINES = Object.fromEntries(
  [...header.matchAll(/^#define (IVDB_[A-Z_]+) (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));

/** Every `ivdb_*` prototype of the header by name, whitespace folded. */
const prototypes = new Map();
for (const m of header.matchAll(/^([A-Za-z_][\w \t*]*?\b(ivdb_\w+)\(([^)]*)\));/gm)) {
  prototypes.set(m[2], m[1].replace(/\s+/g, ' '));
}

const lib = koffi.load(findLibrary());
koffi.opaque('ivdb_index');
koffi.opaque('ivdb_store');
koffi.opaque('ivdb_error');
koffi.alias('ivdb_status', 'uint32_t');

/**
 * Declare a C function from its header prototype. Out-parameters (named
 * `out…` or `err`) become koffi `_Out_` parameters; a string the library
 * hands over (`char **out…`) is kept as a raw pointer, so it can be freed
 * with ivdb_free_string after decoding.
 */
function declare(name) {
  const proto = prototypes.get(name);
  if (!proto) throw new Error(`iscc-vdb: iscc_vdb.h declares no ${name}`);
  const open = proto.indexOf('(');
  const params = proto.slice(open + 1, -1).split(',').map((p) => {
    const param = p.trim();
    const pname = (param.match(/(\w+)$/) || [])[1] || '';
    if (!/^out|^err$/.test(pname)) return param;
    return `_Out_ ${param.replace(/^char \*\*/, 'void **')}`;
  });
  return lib.func(`${proto.slice(0, open)}(${params.join(', ')})`);
}

const C = Object.fromEntries(Object.entries({
  version: 'ivdb_version',
  abiVersion: 'ivdb_abi_version',
  statusStr: 'ivdb_status_str',
  open: 'ivdb_open',
  openReadOnly: 'ivdb_open_read_only',
  dropRemote: 'ivdb_drop_remote',
  close: 'ivdb_close',
  addJson: 'ivdb_add_json',
  getJson: 'ivdb_get_json',
  searchJson: 'ivdb_search_json',
  remove: 'ivdb_remove',
  save: 'ivdb_save',
  rebuild: 'ivdb_rebuild',
  rebuildUnitTypes: 'ivdb_rebuild_unit_types',
  compact: 'ivdb_compact',
  refresh: 'ivdb_refresh',
  copy: 'ivdb_copy',
  infoJson: 'ivdb_info_json',
  explainJson: 'ivdb_explain_json',
  errorCode: 'ivdb_error_code',
  errorMessage: 'ivdb_error_message',
  errorFree: 'ivdb_error_free',
  freeString: 'ivdb_free_string',
  storeOpen: 'ivdb_store_open',
  storeClose: 'ivdb_store_close',
  storePutJson: 'ivdb_store_put_json',
  storeGetJson: 'ivdb_store_get_json',
  storeDelete: 'ivdb_store_delete',
  storeEntriesJson: 'ivdb_store_entries_json',
  storeGetMetadataJson: 'ivdb_store_get_metadata_json',
  storePutMetadataJson: 'ivdb_store_put_metadata_json',
  storeInfoJson: 'ivdb_store_info_json',
  isccIdKey: 'ivdb_iscc_id_key',
}).map(([key, name]) => [key, declare(name)]));

/** The C ABI version of the header these declarations come from. */
const ABI_VERSION = DEFINES.IVDB_ABI_VERSION;
if (C.abiVersion() !== ABI_VERSION) {
  throw new Error(
    `iscc-vdb: libiscc_vdb has ABI version ${C.abiVersion()}, its header iscc_vdb.h ${ABI_VERSION}`);
}

/** Status numbers by name ('IVDB_CLOSED' → 13), as the library names them
 * (numbers are dense from 0: the first unknown one ends the list). */
const STATUS = (() => {
  const out = {};
  for (let n = 0; n < 1 << 16; n++) {
    const name = C.statusStr(n);
    if (name === 'IVDB_UNKNOWN_STATUS') return Object.freeze(out);
    out[name] = n;
  }
  throw new Error('iscc-vdb: the library names too many statuses');
})();

/** An error of the engine: `code` is the status name (e.g. 'IVDB_INVALID_ISCC'). */
class IvdbError extends Error {
  constructor(status, message) {
    super(message || C.statusStr(status));
    this.name = 'IvdbError';
    this.status = status;
    this.code = C.statusStr(status);
  }
}

function check(status, errBox) {
  if (status === STATUS.IVDB_OK) return;
  let message = '';
  if (errBox[0]) {
    message = C.errorMessage(errBox[0]);
    C.errorFree(errBox[0]);
  }
  throw new IvdbError(status, message);
}

function takeString(ptr) {
  const s = koffi.decode(ptr, 'char', -1);
  C.freeString(ptr);
  return s;
}

/** Call a C function synchronously or on a worker thread (Promise). */
function invoke(fn, args, async, finish) {
  const err = [null];
  const all = [...args, err];
  if (!async) {
    check(fn(...all), err);
    return finish();
  }
  return new Promise((resolve, reject) => {
    fn.async(...all, (e, status) => {
      if (e) return reject(e);
      try {
        check(status, err);
        resolve(finish());
      } catch (x) {
        reject(x);
      }
    });
  });
}

/** JSON text of a value, or the error for a value JSON cannot hold (so
 * async methods reject instead of throwing, and start their call at once). */
function stringified(value) {
  try {
    return { text: JSON.stringify(value) };
  } catch (error) {
    return { error };
  }
}

/**
 * The request object of a search: the query (or a batch of them) with the
 * options the call's arguments do not carry (simprintThreshold, detail).
 */
function request(query, { simprintThreshold, detail } = {}) {
  const params = {};
  if (simprintThreshold !== undefined && simprintThreshold !== null) params.simprint_threshold = simprintThreshold;
  if (detail !== undefined && detail !== null) params.detail = detail;
  if (Object.keys(params).length === 0) return query;
  if (Array.isArray(query)) return { queries: query, ...params };
  return { ...query, ...params };
}

class IsccIndex {
  /**
   * Open (or create) the index in `path`; `null` makes an in-memory index
   * (removed on close). `options`: realm, durable, hub_id, unit_threshold,
   * max_dim, connectivity, expansion_add, expansion_search, exact_threshold,
   * shard_size, partition. `{readOnly: true}` opens read-only.
   */
  constructor(path = null, options = {}) {
    const { readOnly = false, ...rest } = options;
    const out = [null];
    const err = [null];
    const status = readOnly
      ? C.openReadOnly(path, out, err)
      : C.open(path, Object.keys(rest).length ? JSON.stringify(rest) : null, out, err);
    check(status, err);
    this._handle = out[0];
    this._pending = 0;
    this._closing = null;
  }

  _live() {
    if (!this._handle || this._closing) throw new IvdbError(STATUS.IVDB_CLOSED, 'the index is closed');
    return this._handle;
  }

  _call(fn, args, async, finish) {
    if (!async) return invoke(fn, [this._live(), ...args], false, finish);
    let handle;
    try {
      handle = this._live();
    } catch (e) {
      return Promise.reject(e);
    }
    this._pending++;
    const done = () => {
      this._pending--;
      if (this._pending === 0 && this._closing) this._closing();
    };
    return invoke(fn, [handle, ...args], true, finish).finally(done);
  }

  _json(fn, input, extra, async) {
    const out = [null];
    return this._call(fn, [input, ...extra, out], async, () => JSON.parse(takeString(out[0])));
  }

  /** Add one entry or an array of entries; returns their ISCC-IDs. */
  add(entries) { return this._json(C.addJson, JSON.stringify(entries), [], false); }
  addAsync(entries) {
    const json = stringified(entries);
    return json.error ? Promise.reject(json.error) : this._json(C.addJson, json.text, [], true);
  }

  /** The stored entry of an ISCC-ID (throws IVDB_NOT_FOUND when absent). */
  get(isccId) { return this._json(C.getJson, isccId, [], false); }
  getAsync(isccId) { return this._json(C.getJson, isccId, [], true); }

  /**
   * Search: query = {iscc_code}, {units}, {features} (granular features,
   * alone or beside a code or units) or {iscc_id} ("more like this"), or
   * any request object of the engine's grammar; options = {count, exact,
   * simprintThreshold, detail}, where count 0 or left out means the
   * library's default. Entries sharing segments with the features come
   * back as chunk_matches.
   */
  search(query, options = {}) {
    const { count = 0, exact = false } = options;
    return this._json(C.searchJson, JSON.stringify(request(query, options)), [count, exact], false);
  }
  searchAsync(query, options = {}) {
    const { count = 0, exact = false } = options;
    const json = stringified(request(query, options));
    return json.error ? Promise.reject(json.error) : this._json(C.searchJson, json.text, [count, exact], true);
  }

  /** Search many queries in one call; returns one result per query. */
  searchBatch(queries, options = {}) { return this.search(queries, options); }
  searchBatchAsync(queries, options = {}) { return this.searchAsync(queries, options); }

  /** Remove entries; returns the number of index mappings removed. */
  remove(isccIds) {
    const ids = Array.isArray(isccIds) ? isccIds : [isccIds];
    const removed = [0];
    return this._call(C.remove, [ids, ids.length, removed], false, () => Number(removed[0]));
  }
  removeAsync(isccIds) {
    const ids = Array.isArray(isccIds) ? isccIds : [isccIds];
    const removed = [0];
    return this._call(C.remove, [ids, ids.length, removed], true, () => Number(removed[0]));
  }

  save() { return this._call(C.save, [], false, () => undefined); }
  saveAsync() { return this._call(C.save, [], true, () => undefined); }
  rebuild() { return this._call(C.rebuild, [], false, () => undefined); }
  rebuildAsync() { return this._call(C.rebuild, [], true, () => undefined); }

  /** Rebuild the unit indexes of the named unit types only (e.g. 'CONTENT-TEXT-V0'), then save. */
  rebuildUnitTypes(unitTypes) {
    return this._call(C.rebuildUnitTypes, [unitTypes, unitTypes.length], false, () => undefined);
  }
  rebuildUnitTypesAsync(unitTypes) {
    return this._call(C.rebuildUnitTypes, [unitTypes, unitTypes.length], true, () => undefined);
  }

  /** Rewrite the unit indexes without rows left by updates and removals; returns the rows dropped. */
  compact() {
    const dropped = [0];
    return this._call(C.compact, [dropped], false, () => Number(dropped[0]));
  }
  compactAsync() {
    const dropped = [0];
    return this._call(C.compact, [dropped], true, () => Number(dropped[0]));
  }

  /** Bring a read-only index up to date with the writer; returns whether anything changed. */
  refresh() {
    const changed = [false];
    return this._call(C.refresh, [changed], false, () => Boolean(changed[0]));
  }

  /** A new in-memory index with the same parameters, realm and entries (removed on close). */
  copy() {
    const out = [null];
    return this._call(C.copy, [out], false, () => IsccIndex._wrap(out[0]));
  }

  static _wrap(handle) {
    const ix = Object.create(IsccIndex.prototype);
    ix._handle = handle;
    ix._pending = 0;
    ix._closing = null;
    return ix;
  }

  /** Figures of the index. */
  info() {
    const out = [null];
    return this._call(C.infoJson, [out], false, () => JSON.parse(takeString(out[0])));
  }

  /**
   * Save (when writable) and release the index. Later calls throw
   * IVDB_CLOSED; closing twice is fine. With async calls still running,
   * the close happens when they end and its promise is returned (as
   * closeAsync's); if nobody awaits it, a failure (say a save on a full
   * disk) is reported as a process warning, never as an unhandled rejection
   * that would end the process.
   */
  close() {
    if (!this._handle) return undefined;
    if (this._pending > 0) {
      const done = this.closeAsync();
      done.catch((e) => {
        process.emitWarning(`closing the index failed: ${e.message}`, { code: 'IVDB_CLOSE_FAILED' });
      });
      return done;
    }
    const handle = this._handle;
    this._handle = null;
    const err = [null];
    check(C.close(handle, err), err);
  }

  closeAsync() {
    if (!this._handle) return Promise.resolve();
    if (this._closing) return this._closed;
    this._closed = new Promise((resolve, reject) => {
      this._closing = () => {
        const handle = this._handle;
        this._handle = null;
        const err = [null];
        try {
          check(C.close(handle, err), err);
          resolve();
        } catch (e) {
          reject(e);
        }
      };
      if (this._pending === 0) this._closing();
    });
    return this._closed;
  }
}

/** The 64-bit key of an ISCC-ID (a BigInt), as IsccStore takes it. */
function isccIdKey(isccId) {
  const out = [0];
  return invoke(C.isccIdKey, [isccId, out], false, () => BigInt(out[0]));
}

/**
 * The primary store of an index directory on its own: entries by their
 * 64-bit ISCC-ID key (a BigInt) and metadata. Its writes are the engine's own
 * (journalled), so an IsccIndex opened on the directory afterwards finds
 * them. A writable store holds the directory's writer lock.
 */
class IsccStore {
  /** Open (or create, unless `{read_only: true}`) the store of the index
   * directory `path`; options: realm, durable, read_only. */
  constructor(path, options = {}) {
    const out = [null];
    const err = [null];
    check(C.storeOpen(path, Object.keys(options).length ? JSON.stringify(options) : null, out, err), err);
    this._handle = out[0];
  }

  _live() {
    if (!this._handle) throw new IvdbError(STATUS.IVDB_CLOSED, 'the store is closed');
    return this._handle;
  }

  _json(fn, args) {
    const out = [null];
    return invoke(fn, [this._live(), ...args, out], false, () => JSON.parse(takeString(out[0])));
  }

  /** Store `entry` under `key` (a BigInt or a safe integer); returns its ISCC-ID. */
  put(key, entry) {
    const out = [null];
    return invoke(C.storePutJson, [this._live(), BigInt(key), JSON.stringify(entry), out], false,
      () => takeString(out[0]));
  }

  /** The stored entry of `key` (throws IVDB_NOT_FOUND when absent). */
  get(key) { return this._json(C.storeGetJson, [BigInt(key)]); }

  /** Delete the entry of `key`; false when there was none. */
  delete(key) {
    const deleted = [false];
    return invoke(C.storeDelete, [this._live(), BigInt(key), deleted], false, () => Boolean(deleted[0]));
  }

  /** Up to `limit` entries with keys >= `from`, in key (time) order, as
   * {key, entry} (keys as BigInt, read from each entry's ISCC-ID, since a
   * JSON number cannot hold 64 bits here); page on from the last key + 1n. */
  entries(from = 0n, limit = 1000) {
    return this._json(C.storeEntriesJson, [BigInt(from), limit])
      .map(([, entry]) => ({ key: isccIdKey(entry.iscc_id), entry }));
  }

  /** The metadata value of `key` (throws IVDB_NOT_FOUND when it has none). */
  getMetadata(key) { return this._json(C.storeGetMetadataJson, [key]); }

  /** Set the metadata value of `key` (anything JSON can hold). */
  putMetadata(key, value) {
    return invoke(C.storePutMetadataJson, [this._live(), key, JSON.stringify(value)], false, () => undefined);
  }

  /** Figures: size, realm, journal_pending, … */
  info() { return this._json(C.storeInfoJson, []); }

  /** Release the store and its lock; later calls throw IVDB_CLOSED; twice is fine. */
  close() {
    if (!this._handle) return;
    const handle = this._handle;
    this._handle = null;
    const err = [null];
    check(C.storeClose(handle, err), err);
  }
}

/**
 * Delete the Milvus index a `milvus://HOST:PORT/NAME` URI names (every
 * collection it has); the number of collections dropped (0 when it had
 * none). A local index is a directory: remove it with `fs`.
 */
function dropRemote(uri) {
  const out = [0];
  return invoke(C.dropRemote, [uri, out], false, () => Number(out[0]));
}

/** Decode any ISCC (code, unit, ID) into its fields. */
function explain(iscc) {
  const out = [null];
  return invoke(C.explainJson, [iscc, out], false, () => JSON.parse(takeString(out[0])));
}

module.exports = {
  IsccIndex,
  IsccStore,
  isccIdKey,
  IvdbError,
  explain,
  dropRemote,
  version: () => C.version(),
  ABI_VERSION,
  STATUS,
};
