package isccvdb

/*
#include <stdlib.h>
#include <stdbool.h>
#include "iscc_vdb.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"unsafe"
)

// BloomOptions of NewBloom; zero fields mean the library defaults
// (100000 keys in the first link, a 1% false positive rate, links growing
// 2 times).
type BloomOptions struct {
	InitialCapacity uint64  `json:"initial_capacity,omitempty"`
	ErrorRate       float64 `json:"error_rate,omitempty"`
	Growth          uint32  `json:"growth,omitempty"`
}

// BloomStats are a filter's figures.
type BloomStats struct {
	Count           uint64  `json:"count"`
	Filters         int     `json:"filters"`
	Capacity        uint64  `json:"capacity"`
	InitialCapacity uint64  `json:"initial_capacity"`
	ErrorRate       float64 `json:"error_rate"`
	Growth          uint32  `json:"growth"`
	SizeBytes       uint64  `json:"size_bytes"`
}

// Bloom is a scalable bloom filter (the filter each sharded index keeps;
// iscc-usearch's ScalableBloomFilter): Contains is false for a key never
// added and true, with a bounded false positive rate, for one that may
// have been. Safe for concurrent use by many goroutines.
type Bloom struct {
	h handle[*C.ivdb_bloom]
}

func newBloom(h *C.ivdb_bloom) *Bloom {
	b := &Bloom{h: handle[*C.ivdb_bloom]{ptr: h}}
	runtime.SetFinalizer(b, func(b *Bloom) { _ = b.Close() })
	return b
}

// NewBloom makes an empty filter (opts nil: the defaults).
func NewBloom(opts *BloomOptions) (*Bloom, error) {
	if errABI != nil {
		return nil, errABI
	}
	copts, err := optionsJSON(opts)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(copts))
	var h *C.ivdb_bloom
	if err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_bloom_new(copts, &h, e) }); err != nil {
		return nil, err
	}
	return newBloom(h), nil
}

// LoadBloom reads a filter saved by Save.
func LoadBloom(path string) (*Bloom, error) {
	if errABI != nil {
		return nil, errABI
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var h *C.ivdb_bloom
	if err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_bloom_load(cpath, &h, e) }); err != nil {
		return nil, err
	}
	return newBloom(h), nil
}

// Close releases the filter (nothing is saved); closing twice is fine.
func (b *Bloom) Close() error {
	if b == nil {
		return ErrClosed
	}
	runtime.SetFinalizer(b, nil)
	return b.h.close(func(h *C.ivdb_bloom) error {
		C.ivdb_bloom_free(h)
		return nil
	})
}

func (b *Bloom) with(f func(h *C.ivdb_bloom) error) error {
	if b == nil {
		return ErrClosed
	}
	return b.h.with(f)
}

// keysArg passes 64-bit keys as the library's packed uint64_t array.
func keysArg(keys []uint64) *C.uint8_t {
	if len(keys) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&keys[0]))
}

// Add adds 64-bit keys.
func (b *Bloom) Add(keys ...uint64) error {
	return b.with(func(h *C.ivdb_bloom) error {
		defer runtime.KeepAlive(keys)
		return call(func(e **C.ivdb_error) C.ivdb_status {
			return C.ivdb_bloom_add(h, keysArg(keys), 8, nil, C.size_t(len(keys)), e)
		})
	})
}

// Contains tells, per key, whether it may have been added.
func (b *Bloom) Contains(keys ...uint64) ([]bool, error) {
	out := make([]bool, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	found := make([]C.bool, len(keys))
	err := b.with(func(h *C.ivdb_bloom) error {
		defer runtime.KeepAlive(keys)
		return call(func(e **C.ivdb_error) C.ivdb_status {
			return C.ivdb_bloom_contains(h, keysArg(keys), 8, nil, C.size_t(len(keys)), &found[0], e)
		})
	})
	for i, f := range found {
		out[i] = bool(f)
	}
	return out, err
}

// Clear forgets every key.
func (b *Bloom) Clear() error {
	return b.with(func(h *C.ivdb_bloom) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_bloom_clear(h, e) })
	})
}

// Save writes the filter to path, replaced atomically and durably.
func (b *Bloom) Save(path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return b.with(func(h *C.ivdb_bloom) error {
		return call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_bloom_save(h, cpath, e) })
	})
}

// Stats returns the filter's figures.
func (b *Bloom) Stats() (BloomStats, error) {
	var s BloomStats
	var text string
	err := b.with(func(h *C.ivdb_bloom) error {
		var out *C.char
		if err := call(func(e **C.ivdb_error) C.ivdb_status { return C.ivdb_bloom_stats_json(h, &out, e) }); err != nil {
			return err
		}
		text = takeString(out)
		return nil
	})
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal([]byte(text), &s)
}
