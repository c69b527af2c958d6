package isccvdb

import (
	"errors"
	"slices"
	"testing"
)

func keyOf(t *testing.T, isccID string) uint64 {
	k, err := IsccIDKey(isccID)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestStoreWritesAreSearchedByAnIndexOpenedAfter(t *testing.T) {
	dir := t.TempDir()
	entries := corpus(t)[:100]
	durable := false
	s, err := OpenStore(dir, &StoreOptions{Durable: &durable})
	if err != nil {
		t.Fatal(err)
	}
	var keys []uint64
	for _, e := range entries {
		id := e["iscc_id"].(string)
		k := keyOf(t, id)
		got, err := s.Put(k, e)
		if err != nil || got != id {
			t.Fatalf("Put(%d) = %q, %v; want %s", k, got, err, id)
		}
		keys = append(keys, k)
	}
	// Pages of entries in ascending key order, every entry once.
	var seen []uint64
	for from := uint64(0); ; {
		page, err := s.Entries(from, 30)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			seen = append(seen, p.Key)
		}
		from = page[len(page)-1].Key + 1
	}
	slices.Sort(keys)
	if !slices.Equal(seen, keys) {
		t.Fatalf("Entries: %d keys in that order, want %d ascending", len(seen), len(keys))
	}
	gone := keyOf(t, entries[0]["iscc_id"].(string))
	if ok, err := s.Delete(gone); err != nil || !ok {
		t.Fatalf("Delete: %v %v", ok, err)
	}
	if ok, _ := s.Delete(gone); ok {
		t.Fatal("deleted twice")
	}
	if _, err := s.Get(gone); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := s.PutMetadata("owner", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	var owner map[string]int
	if err := s.GetMetadata("owner", &owner); err != nil || owner["n"] != 1 {
		t.Fatalf("GetMetadata: %v %v", owner, err)
	}
	if info, err := s.Info(); err != nil || info.Size != 99 || info.JournalPending != 101 {
		t.Fatalf("Info: %+v %v", info, err)
	}
	if _, err := IsccIDKey("ISCC:AAA"); !errors.Is(err, ErrInvalidIscc) {
		t.Fatalf("IsccIDKey of a bad ID: %v", err)
	}
	if _, err := s.Put(gone, Entry{"title": "no code"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Put without code or units: %v", err)
	}
	// The directory's writer is the store until it closes.
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open beside the store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(gone); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	ix, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := ix.Get(entries[0]["iscc_id"].(string)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the entry deleted through the store: %v", err)
	}
	for _, e := range entries[1:20] {
		m, err := ix.Search(queryOf(e), SearchOptions{Count: 20})
		if err != nil {
			t.Fatal(err)
		}
		found := slices.ContainsFunc(m.Matches, func(x Match) bool { return x.IsccID == e["iscc_id"] })
		if !found {
			t.Fatalf("%s stored through the store is not found by the index", e["iscc_id"])
		}
	}
}
