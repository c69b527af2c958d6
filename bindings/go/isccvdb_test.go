package isccvdb

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testdata(t *testing.T, name string) string {
	dir := os.Getenv("IVDB_TESTDATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "testdata")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test data %s missing: check out ../shared beside the repository or set IVDB_TESTDATA", p)
	}
	return p
}

func corpus(t *testing.T) []Entry {
	f, err := os.Open(testdata(t, "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func queryOf(e Entry) Query {
	if units, ok := e["units"].([]any); ok {
		q := Query{}
		for _, u := range units {
			q.Units = append(q.Units, u.(string))
		}
		return q
	}
	return Query{IsccCode: e["iscc_code"].(string)}
}

func addAll(t *testing.T, ix *Index, entries []Entry) []string {
	var ids []string
	for i := 0; i < len(entries); i += 500 {
		end := min(i+500, len(entries))
		got, err := ix.Add(entries[i:end]...)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return ids
}

func TestCorpusLifecycle(t *testing.T) {
	dir := t.TempDir()
	entries := corpus(t)
	durable := false
	ix, err := Open(dir, &Options{Durable: &durable})
	if err != nil {
		t.Fatal(err)
	}
	ids := addAll(t, ix, entries)
	if len(ids) != 2000 || ids[0] != entries[0]["iscc_id"] {
		t.Fatalf("ids: %d, first %s", len(ids), ids[0])
	}
	got, err := ix.Get(ids[3])
	if err != nil || got["iscc_id"] != ids[3] || got["group"] != entries[3]["group"] {
		t.Fatalf("get: %v %v", got, err)
	}
	m, err := ix.Search(queryOf(entries[3]), SearchOptions{Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range m.Matches {
		found = found || x.IsccID == ids[3]
		if x.Score < 0 || x.Score > 1 {
			t.Fatalf("score %v", x.Score)
		}
	}
	if !found || m.Matches[0].Score != 1 {
		t.Fatalf("self match missing: %+v", m)
	}
	batch, err := ix.SearchBatch([]Query{queryOf(entries[0]), queryOf(entries[1])}, SearchOptions{Count: 3, Exact: true})
	if err != nil || len(batch) != 2 {
		t.Fatalf("batch: %v %v", batch, err)
	}
	n, err := ix.Remove(ids[3], "ISCC:MAIGGGMBT3LBUEH7X")
	if err == nil {
		t.Fatalf("a malformed ID in the batch must fail, removed %d", n)
	}
	n, err = ix.Remove(ids[3])
	if err != nil || n == 0 {
		t.Fatalf("remove: %d %v", n, err)
	}
	if _, err := ix.Get(ids[3]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get removed: %v", err)
	}
	if err := ix.Rebuild(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
	info, err := ix.Info()
	if err != nil || info["size"].(float64) != 1999 {
		t.Fatalf("info: %v %v", info, err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	// Use after close is an error, never a crash; closing twice is fine.
	if _, err := ix.Get(ids[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("use after close: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	var nilIndex *Index
	if _, err := nilIndex.Search(Query{}, SearchOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("nil index: %v", err)
	}
	// Reopen: everything is still there; a second writer is locked out.
	ix, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := Open(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	m2, err := ix.Search(queryOf(entries[5]), SearchOptions{Count: 10})
	if err != nil || len(m2.Matches) == 0 {
		t.Fatalf("search after reopen: %v", err)
	}
	// LMDB allows one open per process: a read-only open beside the
	// writer in this process is refused as LOCKED; after Close it works.
	if _, err := OpenReadOnly(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only beside the writer: %v", err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Add(entries[0]); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only add: %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	ix, err := OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	// The first ISCC-ID fixes the realm (0 here).
	if _, err := ix.Add(Entry{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7", "units": []string{"ISCC:GAA7KNIMBHNQRM35"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		entry Entry
		want  error
	}{
		{Entry{"iscc_code": "ISCC:NOTVALID"}, ErrInvalidIscc},
		{Entry{"title": "no code"}, ErrInvalidArgument},
		{Entry{"units": []string{}}, ErrInvalidArgument},
		{Entry{"iscc_id": "ISCC:MEIGGGMBT3LBUEH7", "units": []string{"ISCC:GAA7KNIMBHNQRM35"}}, ErrWrongRealm},
	}
	for _, c := range cases {
		_, err := ix.Add(c.entry)
		if !errors.Is(err, c.want) {
			t.Errorf("%v: got %v, want %v", c.entry, err, c.want)
		}
		var e *Error
		if !errors.As(err, &e) || e.Message == "" {
			t.Errorf("%v: no message in %v", c.entry, err)
		}
	}
	if _, err := ix.Get("ISCC:MAIGGGMBT3X4AMH7"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := Explain("ISCC:AAA"); !errors.Is(err, ErrInvalidIscc) {
		t.Errorf("explain: %v", err)
	}
	x, err := Explain("ISCC:MAIGGGMBT3LBUEH7")
	if err != nil || x["kind"] != "id" {
		t.Errorf("explain id: %v %v", x, err)
	}
	if Version() == "" {
		t.Error("no version")
	}
}

func TestConcurrentGoroutines(t *testing.T) {
	entries := corpus(t)
	ix, err := OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	addAll(t, ix, entries[:1000])
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < 400; i += 8 {
				if _, err := ix.Search(queryOf(entries[i]), SearchOptions{Count: 5}); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1000; i < 2000; i += 100 {
			if _, err := ix.Add(entries[i : i+100]...); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	info, _ := ix.Info()
	if info["size"].(float64) != 2000 {
		t.Fatalf("size %v", info["size"])
	}
}

// Results equal the Rust engine's for the same queries: the fixture is
// written (and checked) by the Rust test tests/binding_fixture.rs.
func TestResultsMatchTheRustEngine(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "search_expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fixture struct {
		Count   int       `json:"count"`
		Queries []Query   `json:"queries"`
		Results []Matches `json:"results"`
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	addAll(t, ix, corpus(t))
	for i, q := range fixture.Queries {
		m, err := ix.Search(q, SearchOptions{Count: fixture.Count, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(fixture.Results[i])
		got, _ := json.Marshal(m)
		if string(want) != string(got) {
			t.Fatalf("query %d differs:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestUpkeepCopyCompactRebuildRefresh(t *testing.T) {
	dir := t.TempDir()
	entries := corpus(t)
	shard := int64(16 << 10) // small shards: removals leave rows in sealed ones
	ix, err := Open(dir, &Options{ShardSize: shard})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ids := addAll(t, ix, entries[:1500])
	if err := ix.Save(); err != nil {
		t.Fatal(err)
	}
	twin, err := ix.Copy()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := twin.Remove(ids[:100]...); err != nil {
		t.Fatal(err)
	}
	twinInfo, _ := twin.Info()
	info, _ := ix.Info()
	if twinInfo["size"].(float64) != 1400 || info["size"].(float64) != 1500 {
		t.Fatalf("copy is independent: copy %v, original %v", twinInfo["size"], info["size"])
	}
	if err := twin.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ix.Remove(ids[200:500]...); err != nil {
		t.Fatal(err)
	}
	dropped, err := ix.Compact()
	if err != nil || dropped == 0 {
		t.Fatalf("compact: %d rows, %v", dropped, err)
	}
	if err := ix.RebuildUnitTypes("META-NONE-V0"); err != nil {
		t.Fatal(err)
	}
	if err := ix.RebuildUnitTypes("NO-SUCH-TYPE"); !errors.Is(err, ErrInvalidIscc) {
		t.Fatalf("unknown unit type: %v", err)
	}
	if changed, err := ix.Refresh(); err != nil || changed {
		t.Fatalf("a writable index is current: %v %v", changed, err)
	}
	m, err := ix.Search(queryOf(entries[600]), SearchOptions{Count: 20})
	if err != nil || len(m.Matches) == 0 {
		t.Fatalf("search after upkeep: %v %v", m, err)
	}
}

func TestGranularFeatures(t *testing.T) {
	entries := corpus(t)[:3]
	ix, err := OpenInMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	// Entries 0 and 1 share a chunk ("AAAAAAAAAAc": 7 in the last byte);
	// entry 2 has another.
	sets := [][]string{{"AAAAAAAAAAE", "AAAAAAAAAAc"}, {"AAAAAAAAAAc"}}
	for i, e := range entries[:2] {
		e["features"] = []FeatureSet{{Maintype: "content", Subtype: "text", Simprints: sets[i],
			Offsets: []uint64{uint64(i * 100), 50}[:len(sets[i])], Sizes: []uint64{10, 20}[:len(sets[i])]}}
	}
	entries[2]["features"] = []FeatureSet{{Maintype: "content", Subtype: "text", Simprints: []string{"__________8"}}}
	addAll(t, ix, entries)
	q := Query{Features: []FeatureSet{{Maintype: "content", Subtype: "text", Simprints: []string{"AAAAAAAAAAc"}}}}
	m, err := ix.Search(q, SearchOptions{Detail: true, SimprintThreshold: 0.99})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ChunkMatches) != 2 {
		t.Fatalf("chunk matches: %+v", m.ChunkMatches)
	}
	segments := map[string]uint64{}
	for _, c := range m.ChunkMatches {
		ty := c.Types["CONTENT-TEXT-V0"]
		if c.Score != 1 || ty.Matches != 1 || len(ty.Chunks) != 1 || ty.Chunks[0].Freq != 2 {
			t.Fatalf("chunk match: %+v", c)
		}
		segments[c.IsccID] = *ty.Chunks[0].Offset
	}
	if segments[entries[0]["iscc_id"].(string)] != 50 || segments[entries[1]["iscc_id"].(string)] != 100 {
		t.Fatalf("segments: %v", segments)
	}
	// A batch with parameters of its own, and "more like this".
	like := Query{IsccID: entries[0]["iscc_id"].(string)}
	b, err := ix.SearchBatch([]Query{q, like}, SearchOptions{SimprintThreshold: 0.99})
	if err != nil || len(b) != 2 || len(b[0].ChunkMatches) != 2 || b[0].ChunkMatches[0].Types["CONTENT-TEXT-V0"].Chunks != nil {
		t.Fatalf("batch: %+v %v", b, err)
	}
	if len(b[1].ChunkMatches) != 1 || b[1].ChunkMatches[0].IsccID != entries[1]["iscc_id"] {
		t.Fatalf("more like this: %+v", b[1].ChunkMatches)
	}
	// Bad features: a clear error.
	bad := Query{Features: []FeatureSet{{Maintype: "content", Subtype: "text", Simprints: []string{"AAAA"}}}}
	_, err = ix.Search(bad, SearchOptions{})
	var e *Error
	if !errors.As(err, &e) || e.Code != StatusInvalidArgument {
		t.Fatalf("bad features: %v", err)
	}
}

func TestPartitionOption(t *testing.T) {
	entries := corpus(t)
	for _, mode := range []string{"auto", "always", "off"} {
		ix, err := Open(t.TempDir(), &Options{Partition: mode})
		if err != nil {
			t.Fatalf("partition %q: %v", mode, err)
		}
		addAll(t, ix, entries[:50])
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open(t.TempDir(), &Options{Partition: "sometimes"})
	if err == nil || !strings.Contains(err.Error(), "partition") {
		t.Fatalf("a bad partition mode must be refused naming it: %v", err)
	}
}
