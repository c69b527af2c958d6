/** An error of the engine. */
export class IvdbError extends Error {
  /** Status name, e.g. 'IVDB_INVALID_ISCC'. */
  code: string;
  /** Numeric status (stable, as in iscc_vdb.h). */
  status: number;
}

export interface OpenOptions {
  readOnly?: boolean;
  realm?: 0 | 1;
  durable?: boolean;
  hub_id?: number;
  unit_threshold?: number;
  max_dim?: 64 | 128 | 192 | 256;
  connectivity?: number;
  expansion_add?: number;
  expansion_search?: number;
  /** "auto" (default: the path measured cheaper) or a row count. */
  exact_threshold?: number | "auto";
  shard_size?: number;
  /** "auto" (default: lists when measured to pay), "always" or "off". */
  partition?: "auto" | "always" | "off";
}

/** An entry: iscc_id (optional), iscc_code and/or units, any other fields. */
export interface Entry {
  iscc_id?: string;
  iscc_code?: string | null;
  units?: string[] | null;
  [field: string]: unknown;
}

/** One simprint type's granular features, as ISCC tools emit them. */
export interface FeatureSet {
  maintype: string;
  subtype: string;
  version?: number;
  /** Headerless base64url simprints of 64-256 bits. */
  simprints: string[];
  offsets?: number[];
  sizes?: number[];
}

export interface Query {
  iscc_code?: string;
  units?: string[];
  features?: FeatureSet[];
  /** iscc-search's form: simprint type to its chunks. */
  simprints?: Record<string, { simprint: string; offset?: number; size?: number }[]>;
  /** "More like this": an indexed entry's ISCC-ID; takes precedence over the other fields. */
  iscc_id?: string;
}

export interface SearchOptions {
  /** Matches per query; 0 or left out: the library's default. */
  count?: number;
  exact?: boolean;
  /** A stored chunk matches a query simprint at this similarity or more (default 0.75). */
  simprintThreshold?: number;
  /** Chunk matches list their matched segments. */
  detail?: boolean;
}

export interface MatchedChunk {
  query: string;
  match: string;
  score: number;
  /** Entries matching the query simprint. */
  freq: number;
  offset: number | null;
  size: number | null;
  query_chunk: number;
  chunk: number;
}

export interface ChunkMatch {
  iscc_id: string;
  /** IDF-weighted share of the query's simprints matched. */
  score: number;
  types: Record<string, { score: number; matches: number; queried: number; chunks?: MatchedChunk[] }>;
}

export interface UnitScore {
  score: number;
  distance: number;
  kept: boolean;
}

export interface Match {
  iscc_id: string;
  score: number;
  distance: number;
  units: Record<string, UnitScore>;
  instance: boolean;
}

export interface Matches {
  matches: Match[];
  instance_matches: string[];
  /** Rows scanned plus graph nodes taken into HNSW candidate sets. */
  visited_members: number;
  /** Distances computed (rows scanned plus NPHD computations of graph walks). */
  computed_distances: number;
  /** Entries sharing segments with the query's granular features, best first. */
  chunk_matches: ChunkMatch[];
}

export class IsccIndex {
  /** Open (or create) the index in `path`; null: in-memory. */
  constructor(path?: string | null, options?: OpenOptions);
  add(entries: Entry | Entry[]): string[];
  addAsync(entries: Entry | Entry[]): Promise<string[]>;
  get(isccId: string): Entry;
  getAsync(isccId: string): Promise<Entry>;
  search(query: Query, options?: SearchOptions): Matches;
  searchAsync(query: Query, options?: SearchOptions): Promise<Matches>;
  searchBatch(queries: Query[], options?: SearchOptions): Matches[];
  searchBatchAsync(queries: Query[], options?: SearchOptions): Promise<Matches[]>;
  remove(isccIds: string | string[]): number;
  removeAsync(isccIds: string | string[]): Promise<number>;
  save(): void;
  saveAsync(): Promise<void>;
  rebuild(): void;
  rebuildAsync(): Promise<void>;
  /** Rebuild the unit indexes of the named unit types only, then save. */
  rebuildUnitTypes(unitTypes: string[]): void;
  rebuildUnitTypesAsync(unitTypes: string[]): Promise<void>;
  /** Drop rows left by updates and removals; returns the rows dropped. */
  compact(): number;
  compactAsync(): Promise<number>;
  /** Bring a read-only index up to date with the writer; true when anything changed. */
  refresh(): boolean;
  /** A new in-memory index with the same parameters, realm and entries. */
  copy(): IsccIndex;
  info(): Record<string, unknown>;
  /** Save and release; with async calls in flight, the promise of the
   * close that follows them (a failure unawaited becomes a process warning,
   * code IVDB_CLOSE_FAILED). */
  close(): Promise<void> | undefined;
  closeAsync(): Promise<void>;
}

export interface StoreOptions {
  realm?: number;
  durable?: boolean;
  read_only?: boolean;
}

/** The primary store of an index directory on its own: entries by their
 * 64-bit ISCC-ID key, and metadata; an IsccIndex opened afterwards finds what
 * it wrote. A writable store holds the directory's writer lock. */
export class IsccStore {
  constructor(path: string, options?: StoreOptions);
  /** Store an entry under a key; returns its ISCC-ID. */
  put(key: bigint | number, entry: Entry): string;
  /** The stored entry (throws IVDB_NOT_FOUND when absent). */
  get(key: bigint | number): Entry;
  delete(key: bigint | number): boolean;
  /** Up to `limit` entries with keys >= `from`, in key (time) order. */
  entries(from?: bigint | number, limit?: number): { key: bigint; entry: Entry }[];
  /** Throws IVDB_NOT_FOUND when the key has no value. */
  getMetadata(key: string): unknown;
  putMetadata(key: string, value: unknown): void;
  info(): Record<string, unknown>;
  close(): void;
}

/** The 64-bit key of an ISCC-ID, as IsccStore takes it. */
export function isccIdKey(isccId: string): bigint;
export function explain(iscc: string): Record<string, unknown>;
/** Delete the Milvus index a `milvus://HOST:PORT/NAME` URI names (every
 * collection it has); the number of collections dropped. A local index is a
 * directory: remove it with `fs`. */
export function dropRemote(uri: string): number;
export function version(): string;
/** The C ABI version of iscc_vdb.h (the library must report the same). */
export const ABI_VERSION: number;
/** Status numbers by name, as the library names them (e.g. STATUS.IVDB_CLOSED). */
export const STATUS: Readonly<Record<string, number>>;
