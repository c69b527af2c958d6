package isccvdb

/*
#include <stdlib.h>
#include "iscc_vdb.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"unsafe"
)

// StoreOptions of OpenStore; nil fields mean the library defaults (a new
// store's realm is 0; commits are fsync'd).
type StoreOptions struct {
	Realm    *int  `json:"realm,omitempty"`
	Durable  *bool `json:"durable,omitempty"`
	ReadOnly bool  `json:"read_only,omitempty"`
}

// Store is the primary store of an index directory on its own: entries by
// their 64-bit ISCC-ID key, and metadata. Its writes are the engine's own
// (journalled), so an Index opened on the directory afterwards finds them.
// A writable Store holds the directory's writer lock. Safe for concurrent
// use by many goroutines.
type Store struct {
	h handle[*C.ivdb_store]
}

// OpenStore opens (or creates, unless read-only) the store of the index
// directory path (its LMDB environment is path/primary.lmdb).
func OpenStore(path string, opts *StoreOptions) (*Store, error) {
	if errABI != nil {
		return nil, errABI
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	copts, err := optionsJSON(opts)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(copts))
	var h *C.ivdb_store
	if err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_store_open(cpath, copts, &h, e) }); err != nil {
		return nil, err
	}
	s := &Store{h: handle[*C.ivdb_store]{ptr: h}}
	runtime.SetFinalizer(s, func(s *Store) { _ = s.Close() })
	return s, nil
}

// Close releases the store and its lock (every write was committed when it
// returned). Later calls return ErrClosed; closing twice is fine.
func (s *Store) Close() error {
	if s == nil {
		return ErrClosed
	}
	runtime.SetFinalizer(s, nil)
	return s.h.close(func(h *C.ivdb_store) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_store_close(h, e) })
	})
}

// with runs f with the live handle under the read lock.
func (s *Store) with(f func(h *C.ivdb_store) error) error {
	if s == nil {
		return ErrClosed
	}
	return s.h.with(f)
}

// jsonOut runs a C function that writes a JSON string, decoded into v.
func (s *Store) jsonOut(v any, f func(h *C.ivdb_store, out **C.char, e **C.ivdb_error) C.ivdb_status) error {
	var text string
	err := s.with(func(h *C.ivdb_store) error {
		var out *C.char
		if err := call(func(e **C.ivdb_error) C.ivdb_status { return f(h, &out, e) }); err != nil {
			return err
		}
		text = takeString(out)
		return nil
	})
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(text), v)
}

// Put stores entry under key (validated as Index.Add validates it; an
// iscc_id field must name key) and returns the entry's ISCC-ID.
func (s *Store) Put(key uint64, entry Entry) (string, error) {
	raw, err := json.Marshal(entry)
	if err != nil {
		return "", err
	}
	var id string
	err = s.with(func(h *C.ivdb_store) error {
		cin := C.CString(string(raw))
		defer C.free(unsafe.Pointer(cin))
		var out *C.char
		if err := call(func(e **C.ivdb_error) C.ivdb_status {
			return C.ivdb_store_put_json(h, C.uint64_t(key), cin, &out, e)
		}); err != nil {
			return err
		}
		id = takeString(out)
		return nil
	})
	return id, err
}

// Get returns the stored entry of key (ErrNotFound when absent).
func (s *Store) Get(key uint64) (Entry, error) {
	var entry Entry
	err := s.jsonOut(&entry, func(h *C.ivdb_store, out **C.char, e **C.ivdb_error) C.ivdb_status {
		return C.ivdb_store_get_json(h, C.uint64_t(key), out, e)
	})
	return entry, err
}

// Delete deletes the entry of key; false when there was none.
func (s *Store) Delete(key uint64) (bool, error) {
	var deleted C.bool
	err := s.with(func(h *C.ivdb_store) error {
		return call(func(e **C.ivdb_error) C.ivdb_status {
			return C.ivdb_store_delete(h, C.uint64_t(key), &deleted, e)
		})
	})
	return bool(deleted), err
}

// StoredEntry is one entry with its key, as Entries returns them.
type StoredEntry struct {
	Key   uint64
	Entry Entry
}

// Entries returns up to limit entries with keys >= from, in key (time)
// order; page on from the last key + 1.
func (s *Store) Entries(from uint64, limit int) ([]StoredEntry, error) {
	var pairs [][2]json.RawMessage
	err := s.jsonOut(&pairs, func(h *C.ivdb_store, out **C.char, e **C.ivdb_error) C.ivdb_status {
		return C.ivdb_store_entries_json(h, C.uint64_t(from), C.size_t(limit), out, e)
	})
	if err != nil {
		return nil, err
	}
	out := make([]StoredEntry, len(pairs))
	for i, p := range pairs {
		if err := json.Unmarshal(p[0], &out[i].Key); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(p[1], &out[i].Entry); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GetMetadata decodes the metadata value of key into v (ErrNotFound when
// the key has none).
func (s *Store) GetMetadata(key string, v any) error {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	return s.jsonOut(v, func(h *C.ivdb_store, out **C.char, e **C.ivdb_error) C.ivdb_status {
		return C.ivdb_store_get_metadata_json(h, ckey, out, e)
	})
}

// PutMetadata sets the metadata value of key (any value JSON can hold).
func (s *Store) PutMetadata(key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	cval := C.CString(string(raw))
	defer C.free(unsafe.Pointer(cval))
	return s.with(func(h *C.ivdb_store) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_store_put_metadata_json(h, ckey, cval, e) })
	})
}

// StoreInfo holds figures of a store.
type StoreInfo struct {
	Path           string `json:"path"`
	Size           uint64 `json:"size"`
	Realm          *int   `json:"realm"`
	ReadOnly       bool   `json:"read_only"`
	Durable        bool   `json:"durable"`
	JournalPending uint64 `json:"journal_pending"`
}

// Info returns the store's figures.
func (s *Store) Info() (StoreInfo, error) {
	var info StoreInfo
	err := s.jsonOut(&info, func(h *C.ivdb_store, out **C.char, e **C.ivdb_error) C.ivdb_status {
		return C.ivdb_store_info_json(h, out, e)
	})
	return info, err
}

// IsccIDKey returns the 64-bit key of an ISCC-ID, as a Store takes it.
func IsccIDKey(isccID string) (uint64, error) {
	if errABI != nil {
		return 0, errABI
	}
	cin := C.CString(isccID)
	defer C.free(unsafe.Pointer(cin))
	var key C.uint64_t
	err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_iscc_id_key(cin, &key, e) })
	return uint64(key), err
}
