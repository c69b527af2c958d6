package isccvdb

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestBloomGrowsKeepsEveryKeyAndRoundTrips(t *testing.T) {
	b, err := NewBloom(&BloomOptions{InitialCapacity: 100, ErrorRate: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	keys := make([]uint64, 1000)
	for i := range keys {
		keys[i] = uint64(i) * 7919
	}
	if err := b.Add(keys...); err != nil {
		t.Fatal(err)
	}
	found, err := b.Contains(keys...)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range found {
		if !f {
			t.Fatalf("key %d added but not found", keys[i])
		}
	}
	st, err := b.Stats()
	if err != nil || st.Filters < 2 || st.InitialCapacity != 100 || st.Count < 950 {
		t.Fatalf("stats after 1000 keys from 100: %+v, %v", st, err)
	}
	path := filepath.Join(t.TempDir(), "keys.bloom")
	if err := b.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadBloom(path)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.Contains(keys[:10]...)
	if err != nil || !again[0] || !again[9] {
		t.Fatalf("loaded filter: %v, %v", again, err)
	}
	if err := back.Clear(); err != nil {
		t.Fatal(err)
	}
	if f, _ := back.Contains(keys[0]); f[0] {
		t.Fatal("a cleared filter still holds a key")
	}
	back.Close()
	if _, err := back.Contains(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if _, err := NewBloom(&BloomOptions{ErrorRate: 2}); err == nil {
		t.Fatal("an error rate of 2 was accepted")
	}
	if _, err := LoadBloom(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing file loaded")
	}
}
