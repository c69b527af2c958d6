// Package isccvdb is the Go binding of iscc-vdb, a nearest-neighbour search
// engine for ISCC codes. It calls the C ABI of libiscc_vdb (built by cargo
// in this repository: target/debug, else target/release) through cgo.
//
// An *Index is safe for concurrent use by many goroutines. Close it when
// done (a finalizer closes a forgotten one, but only at garbage collection).
package isccvdb

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/debug -L${SRCDIR}/../../target/release -liscc_vdb
#cgo LDFLAGS: -Wl,-rpath,${SRCDIR}/../../target/debug -Wl,-rpath,${SRCDIR}/../../target/release
#include <stdlib.h>
#include "iscc_vdb.h"
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// Status is a status code of the C ABI.
type Status uint32

// Status codes (stable numbers, as in iscc_vdb.h).
const (
	StatusOK                 Status = C.IVDB_OK
	StatusInvalidArgument    Status = C.IVDB_INVALID_ARGUMENT
	StatusInvalidIscc        Status = C.IVDB_INVALID_ISCC
	StatusInvalidJSON        Status = C.IVDB_INVALID_JSON
	StatusNotFound           Status = C.IVDB_NOT_FOUND
	StatusIO                 Status = C.IVDB_IO
	StatusDiskFull           Status = C.IVDB_DISK_FULL
	StatusLocked             Status = C.IVDB_LOCKED
	StatusIncompatibleFormat Status = C.IVDB_INCOMPATIBLE_FORMAT
	StatusReadOnly           Status = C.IVDB_READ_ONLY
	StatusPanic              Status = C.IVDB_PANIC
	StatusInternal           Status = C.IVDB_INTERNAL
	StatusWrongRealm         Status = C.IVDB_WRONG_REALM
	StatusClosed             Status = C.IVDB_CLOSED
	StatusCorrupt            Status = C.IVDB_CORRUPT
)

// String is the C name of the status, e.g. "IVDB_INVALID_ISCC".
func (s Status) String() string {
	return C.GoString(C.ivdb_status_str(C.ivdb_status(s)))
}

// Error is an error of the engine: a status code and a message naming the
// problem. Compare with errors.Is against the Err* values (by code).
type Error struct {
	Code    Status
	Message string
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Message }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Sentinel errors for errors.Is.
var (
	ErrInvalidArgument    = &Error{Code: StatusInvalidArgument}
	ErrInvalidIscc        = &Error{Code: StatusInvalidIscc}
	ErrInvalidJSON        = &Error{Code: StatusInvalidJSON}
	ErrNotFound           = &Error{Code: StatusNotFound}
	ErrLocked             = &Error{Code: StatusLocked}
	ErrReadOnly           = &Error{Code: StatusReadOnly}
	ErrWrongRealm         = &Error{Code: StatusWrongRealm}
	ErrClosed             = &Error{Code: StatusClosed, Message: "the index is closed"}
	ErrIncompatibleFormat = &Error{Code: StatusIncompatibleFormat}
)

// errABI is set when the loaded library speaks another ABI than the header.
var errABI error

func init() {
	if lib, hdr := uint32(C.ivdb_abi_version()), uint32(C.IVDB_ABI_VERSION); lib != hdr {
		errABI = fmt.Errorf("isccvdb: libiscc_vdb has ABI version %d, this binding needs %d", lib, hdr)
	}
}

// Version is the library version.
func Version() string { return C.GoString(C.ivdb_version()) }

// call runs a C function that reports through an ivdb_error.
func call(f func(err **C.ivdb_error) C.ivdb_status) error {
	var cerr *C.ivdb_error
	status := f(&cerr)
	if status == C.IVDB_OK {
		return nil
	}
	e := &Error{Code: Status(status)}
	if cerr != nil {
		e.Message = C.GoString(C.ivdb_error_message(cerr))
		C.ivdb_error_free(cerr)
	}
	return e
}

// takeString copies and frees a string made by the library.
func takeString(s *C.char) string {
	defer C.ivdb_free_string(s)
	return C.GoString(s)
}

// Options of Open; zero values mean the library defaults.
type Options struct {
	Realm           *int     `json:"realm,omitempty"`
	Durable         *bool    `json:"durable,omitempty"`
	HubID           *int     `json:"hub_id,omitempty"`
	UnitThreshold   *float64 `json:"unit_threshold,omitempty"`
	MaxDim          int      `json:"max_dim,omitempty"`
	Connectivity    int      `json:"connectivity,omitempty"`
	ExpansionAdd    int      `json:"expansion_add,omitempty"`
	ExpansionSearch int      `json:"expansion_search,omitempty"`
	// ExactThreshold: a row count up to which searches scan; 0 leaves the
	// default, "auto" (the path measured cheaper).
	ExactThreshold int   `json:"exact_threshold,omitempty"`
	ShardSize      int64 `json:"shard_size,omitempty"`
	// Partition: "auto" (the default: unit indexes partition their rows
	// into lists as they grow, when measured to pay), "always" or "off".
	Partition string `json:"partition,omitempty"`
}

// Index is an open ISCC index.
type Index struct {
	h handle[*C.ivdb_index]
}

// optionsJSON is opts as a C string of JSON (NULL for nil opts: the
// library's defaults); free it with C.free.
func optionsJSON[T any](opts *T) (*C.char, error) {
	if opts == nil {
		return nil, nil
	}
	raw, err := json.Marshal(opts)
	if err != nil {
		return nil, err
	}
	return C.CString(string(raw)), nil
}

func open(path *string, opts *Options, readOnly bool) (*Index, error) {
	if errABI != nil {
		return nil, errABI
	}
	var cpath *C.char
	if path != nil {
		cpath = C.CString(*path)
		defer C.free(unsafe.Pointer(cpath))
	}
	copts, err := optionsJSON(opts)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(copts))
	var h *C.ivdb_index
	err = call(func(e **C.ivdb_error) C.ivdb_status {
		if readOnly {
			return C.ivdb_open_read_only(cpath, &h, e)
		}
		return C.ivdb_open(cpath, copts, &h, e)
	})
	if err != nil {
		return nil, err
	}
	ix := &Index{h: handle[*C.ivdb_index]{ptr: h}}
	runtime.SetFinalizer(ix, func(ix *Index) { _ = ix.Close() })
	return ix, nil
}

// Open opens (or creates) the index in directory path.
func Open(path string, opts *Options) (*Index, error) { return open(&path, opts, false) }

// OpenInMemory makes an index in a temporary directory, removed on Close.
func OpenInMemory(opts *Options) (*Index, error) { return open(nil, opts, false) }

// OpenReadOnly opens the index in path read-only (no writer lock).
func OpenReadOnly(path string) (*Index, error) { return open(&path, nil, true) }

// DropRemote deletes the Milvus index a milvus://HOST:PORT/NAME URI names
// (every collection it has) and returns how many collections were dropped
// (0 when it had none). A local index is a directory: remove it with os.
func DropRemote(uri string) (uint64, error) {
	if errABI != nil {
		return 0, errABI
	}
	curi := C.CString(uri)
	defer C.free(unsafe.Pointer(curi))
	var dropped C.size_t
	err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_drop_remote(curi, &dropped, e) })
	return uint64(dropped), err
}

// Close saves (when writable) and releases the index. Later calls on the
// index return ErrClosed; closing twice is fine.
func (ix *Index) Close() error {
	if ix == nil {
		return ErrClosed
	}
	runtime.SetFinalizer(ix, nil)
	return ix.h.close(func(h *C.ivdb_index) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_close(h, e) })
	})
}

// with runs f with the live handle under the read lock.
func (ix *Index) with(f func(h *C.ivdb_index) error) error {
	if ix == nil {
		return ErrClosed
	}
	return ix.h.with(f)
}

// jsonCall passes JSON in and takes JSON out.
func (ix *Index) jsonCall(in string, f func(h *C.ivdb_index, in *C.char, out **C.char, e **C.ivdb_error) C.ivdb_status) (string, error) {
	var result string
	err := ix.with(func(h *C.ivdb_index) error {
		cin := C.CString(in)
		defer C.free(unsafe.Pointer(cin))
		var out *C.char
		if err := call(func(e **C.ivdb_error) C.ivdb_status { return f(h, cin, &out, e) }); err != nil {
			return err
		}
		result = takeString(out)
		return nil
	})
	return result, err
}

// Entry is one index entry: iscc_id (optional), iscc_code and/or units,
// and any other fields, stored and returned as given.
type Entry = map[string]any

// Add adds entries and returns one ISCC-ID per entry.
func (ix *Index) Add(entries ...Entry) ([]string, error) {
	raw, err := json.Marshal(entries)
	if err != nil {
		return nil, err
	}
	out, err := ix.jsonCall(string(raw), func(h *C.ivdb_index, in *C.char, out **C.char, e **C.ivdb_error) C.ivdb_status {
		return C.ivdb_add_json(h, in, out, e)
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	return ids, json.Unmarshal([]byte(out), &ids)
}

// Get returns the stored entry of an ISCC-ID (ErrNotFound when absent).
func (ix *Index) Get(isccID string) (Entry, error) {
	out, err := ix.jsonCall(isccID, func(h *C.ivdb_index, in *C.char, out **C.char, e **C.ivdb_error) C.ivdb_status {
		return C.ivdb_get_json(h, in, out, e)
	})
	if err != nil {
		return nil, err
	}
	var entry Entry
	return entry, json.Unmarshal([]byte(out), &entry)
}

// Query is a search query: an ISCC-CODE or units (units win), and/or
// granular features; or, alone, an indexed entry's ISCC-ID ("more like
// this": its units and features are the query, the entry is left out).
type Query struct {
	IsccCode string       `json:"iscc_code,omitempty"`
	Units    []string     `json:"units,omitempty"`
	Features []FeatureSet `json:"features,omitempty"`
	IsccID   string       `json:"iscc_id,omitempty"`
}

// FeatureSet is one simprint type's granular features, as ISCC tools emit
// them in .iscc.json: simprints are headerless base64url (64-256 bits);
// Offsets and Sizes (optional) give each chunk's segment.
type FeatureSet struct {
	Maintype  string   `json:"maintype"`
	Subtype   string   `json:"subtype"`
	Version   int      `json:"version"`
	Simprints []string `json:"simprints"`
	Offsets   []uint64 `json:"offsets,omitempty"`
	Sizes     []uint64 `json:"sizes,omitempty"`
}

// SearchOptions of Search; Count 0 means the library's default.
// SimprintThreshold 0 means the library's default (0.75); Detail lists the
// matched segments of chunk matches.
type SearchOptions struct {
	Count             int
	Exact             bool
	SimprintThreshold float32
	Detail            bool
}

// MatchedChunk is one matched segment of a chunk match.
type MatchedChunk struct {
	Query      string  `json:"query"`
	Match      string  `json:"match"`
	Score      float32 `json:"score"`
	Freq       uint64  `json:"freq"`
	Offset     *uint64 `json:"offset"`
	Size       *uint64 `json:"size"`
	QueryChunk int     `json:"query_chunk"`
	Chunk      uint64  `json:"chunk"`
}

// TypeChunkScore is how an entry matched the query's simprints of one type.
type TypeChunkScore struct {
	Score   float32        `json:"score"`
	Matches int            `json:"matches"`
	Queried int            `json:"queried"`
	Chunks  []MatchedChunk `json:"chunks,omitempty"`
}

// ChunkMatch is an entry sharing segments with the query's features; Score
// is the IDF-weighted share of the query's simprints it matched.
type ChunkMatch struct {
	IsccID string                    `json:"iscc_id"`
	Score  float32                   `json:"score"`
	Types  map[string]TypeChunkScore `json:"types"`
}

// UnitScore is the best match of one unit type.
type UnitScore struct {
	Score    float32 `json:"score"`
	Distance float32 `json:"distance"`
	Kept     bool    `json:"kept"`
}

// Match is one matching entry.
type Match struct {
	IsccID   string               `json:"iscc_id"`
	Score    float32              `json:"score"`
	Distance float32              `json:"distance"`
	Units    map[string]UnitScore `json:"units"`
	Instance bool                 `json:"instance"`
}

// Matches is the result of one query.
type Matches struct {
	Matches         []Match  `json:"matches"`
	InstanceMatches []string `json:"instance_matches"`
	// VisitedMembers counts the rows scanned plus the graph nodes taken into
	// HNSW candidate sets, over every unit type and shard searched.
	VisitedMembers uint64 `json:"visited_members"`
	// ComputedDistances counts the distances computed (rows scanned plus the
	// NPHD computations of graph walks).
	ComputedDistances uint64 `json:"computed_distances"`
	// ChunkMatches are the entries sharing segments with the query's
	// granular features, best first.
	ChunkMatches []ChunkMatch `json:"chunk_matches"`
}

// searchParams are the parameters a request object carries.
type searchParams struct {
	SimprintThreshold *float32 `json:"simprint_threshold,omitempty"`
	Detail            bool     `json:"detail,omitempty"`
}

func paramsOf(o SearchOptions) searchParams {
	p := searchParams{Detail: o.Detail}
	if o.SimprintThreshold != 0 {
		t := o.SimprintThreshold
		p.SimprintThreshold = &t
	}
	return p
}

func (ix *Index) searchJSON(q any, o SearchOptions) (string, error) {
	if o.Count < 0 {
		return "", &Error{Code: StatusInvalidArgument, Message: fmt.Sprintf("count %d: expected 0 (the default) or more", o.Count)}
	}
	raw, err := json.Marshal(q)
	if err != nil {
		return "", err
	}
	return ix.jsonCall(string(raw), func(h *C.ivdb_index, in *C.char, out **C.char, e **C.ivdb_error) C.ivdb_status {
		return C.ivdb_search_json(h, in, C.size_t(o.Count), C.bool(o.Exact), out, e)
	})
}

// Search finds the entries most similar to the query.
func (ix *Index) Search(q Query, o SearchOptions) (*Matches, error) {
	body := struct {
		Query
		searchParams
	}{q, paramsOf(o)}
	out, err := ix.searchJSON(body, o)
	if err != nil {
		return nil, err
	}
	var m Matches
	return &m, json.Unmarshal([]byte(out), &m)
}

// SearchBatch searches many queries in one call (in parallel inside).
func (ix *Index) SearchBatch(qs []Query, o SearchOptions) ([]Matches, error) {
	if qs == nil {
		qs = []Query{}
	}
	var body any = qs
	if o.Detail || o.SimprintThreshold != 0 {
		// A batch with parameters of its own.
		body = struct {
			Queries []Query `json:"queries"`
			searchParams
		}{qs, paramsOf(o)}
	}
	out, err := ix.searchJSON(body, o)
	if err != nil {
		return nil, err
	}
	var m []Matches
	return m, json.Unmarshal([]byte(out), &m)
}

// Remove removes entries; it returns the number of index mappings removed
// (unknown IDs remove nothing).
func (ix *Index) Remove(isccIDs ...string) (int, error) {
	var removed C.size_t
	err := ix.with(func(h *C.ivdb_index) error {
		return withCStrings(isccIDs, func(arr **C.char, n C.size_t) error {
			return call(func(e **C.ivdb_error) C.ivdb_status {
				return C.ivdb_remove(h, arr, n, &removed, e)
			})
		})
	})
	return int(removed), err
}

// withCStrings passes ss to f as a C array of C strings (in C memory, as
// cgo's pointer rules ask), freed when f returns.
func withCStrings(ss []string, f func(arr **C.char, n C.size_t) error) error {
	cs := make([]*C.char, len(ss))
	for i, s := range ss {
		cs[i] = C.CString(s)
	}
	defer func() {
		for _, p := range cs {
			C.free(unsafe.Pointer(p))
		}
	}()
	arr := (**C.char)(C.malloc(C.size_t(len(cs)+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	copy(unsafe.Slice(arr, len(cs)+1), cs)
	return f(arr, C.size_t(len(cs)))
}

// RebuildUnitTypes rebuilds the unit indexes of the named unit types only
// (e.g. "CONTENT-TEXT-V0"), crash-atomically, then saves.
func (ix *Index) RebuildUnitTypes(unitTypes ...string) error {
	return ix.with(func(h *C.ivdb_index) error {
		return withCStrings(unitTypes, func(arr **C.char, n C.size_t) error {
			return call(func(e **C.ivdb_error) C.ivdb_status {
				return C.ivdb_rebuild_unit_types(h, arr, n, e)
			})
		})
	})
}

// Compact rewrites the unit indexes without the rows left by updates and
// removals, then saves; it returns the rows dropped.
func (ix *Index) Compact() (int, error) {
	var dropped C.size_t
	err := ix.with(func(h *C.ivdb_index) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_compact(h, &dropped, e) })
	})
	return int(dropped), err
}

// Refresh brings a read-only index up to date with what the writer
// committed and saved since; it reports whether anything changed (a
// writable index is always current).
func (ix *Index) Refresh() (bool, error) {
	var changed C.bool
	err := ix.with(func(h *C.ivdb_index) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_refresh(h, &changed, e) })
	})
	return bool(changed), err
}

// Copy returns a new in-memory index with the same parameters, realm and
// entries (removed when closed).
func (ix *Index) Copy() (*Index, error) {
	var out *C.ivdb_index
	err := ix.with(func(h *C.ivdb_index) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_copy(h, &out, e) })
	})
	if err != nil {
		return nil, err
	}
	twin := &Index{h: handle[*C.ivdb_index]{ptr: out}}
	runtime.SetFinalizer(twin, func(ix *Index) { _ = ix.Close() })
	return twin, nil
}

// Save persists the unit indexes.
func (ix *Index) Save() error {
	return ix.with(func(h *C.ivdb_index) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_save(h, e) })
	})
}

// Rebuild recreates every derived index from the stored entries.
func (ix *Index) Rebuild() error {
	return ix.with(func(h *C.ivdb_index) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_rebuild(h, e) })
	})
}

// Info returns figures of the index (size, unit_types, …).
func (ix *Index) Info() (map[string]any, error) {
	var result map[string]any
	err := ix.with(func(h *C.ivdb_index) error {
		var out *C.char
		if err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_info_json(h, &out, e) }); err != nil {
			return err
		}
		return json.Unmarshal([]byte(takeString(out)), &result)
	})
	return result, err
}

// Explain decodes any ISCC (code, unit, ID) into its fields.
func Explain(iscc string) (map[string]any, error) {
	if errABI != nil {
		return nil, errABI
	}
	cin := C.CString(iscc)
	defer C.free(unsafe.Pointer(cin))
	var out *C.char
	if err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_explain_json(cin, &out, e) }); err != nil {
		return nil, err
	}
	var result map[string]any
	return result, json.Unmarshal([]byte(takeString(out)), &result)
}
