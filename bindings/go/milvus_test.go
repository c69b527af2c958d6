package isccvdb

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// milvusServer is the base URI of the Milvus server the test command
// starts (IVDB_MILVUS_URI); the test is skipped without one.
func milvusServer(t *testing.T) string {
	base := os.Getenv("IVDB_MILVUS_URI")
	if base == "" {
		t.Skip("set IVDB_MILVUS_URI=milvus://HOST:PORT to run the Milvus tests")
	}
	return strings.TrimRight(base, "/")
}

// A milvus:// path through the C ABI answers as a directory does.
func TestMilvusURIAnswersAsADirectory(t *testing.T) {
	uri := fmt.Sprintf("%s/go_%d_%d", milvusServer(t), os.Getpid(), time.Now().UnixNano()%1e9)
	defer func() {
		if n, err := DropRemote(uri); err != nil || n == 0 {
			t.Errorf("DropRemote: %d collections, %v", n, err)
		}
		if _, err := DropRemote(t.TempDir()); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("DropRemote of a directory: %v", err)
		}
	}()
	entries := corpus(t)[:200]
	durable := false
	local, err := Open(t.TempDir(), &Options{Durable: &durable})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	remote, err := Open(uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := addAll(t, local, entries)
	if got := addAll(t, remote, entries); !reflect.DeepEqual(got, ids) {
		t.Fatalf("ids differ: %v vs %v", got[:3], ids[:3])
	}
	a, err := local.Get(ids[3])
	if err != nil {
		t.Fatal(err)
	}
	b, err := remote.Get(ids[3])
	if err != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("get: %v, %v vs %v", err, b, a)
	}
	for _, e := range entries[:15] {
		x, err := local.Search(queryOf(e), SearchOptions{Count: 10, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		y, err := remote.Search(queryOf(e), SearchOptions{Count: 10, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(x.Matches, y.Matches) || !reflect.DeepEqual(x.InstanceMatches, y.InstanceMatches) {
			t.Fatalf("%v: local %+v, Milvus %+v", e["iscc_id"], x.Matches, y.Matches)
		}
	}
	if err := remote.Close(); err != nil {
		t.Fatal(err)
	}
	view, err := OpenReadOnly(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	if _, err := view.Add(entries[0]); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("add to a read-only view: %v", err)
	}
	if _, err := OpenReadOnly(uri + "_none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a missing index: %v", err)
	}
	_, err = Open("milvus://ann:s3cret@127.0.0.1:1/x", nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != StatusIO || strings.Contains(e.Message, "s3cret") {
		t.Fatalf("an unreachable server: %v", err)
	}
}
