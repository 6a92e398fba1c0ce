package state

import (
	"fmt"
	"testing"

	"github.com/veltrix/veltrix/processors"
)

// scanAll returns the store's entries as k=v, in key order.
func scanAll(tb testing.TB, s processors.Store, prefix string) string {
	tb.Helper()
	var kvs []string
	if err := s.Scan([]byte(prefix), func(k, v []byte) bool { kvs = append(kvs, string(k)+"="+string(v)); return true }); err != nil {
		tb.Fatal(err)
	}
	return fmt.Sprint(kvs)
}

// openSmallDB opens a database with small Pebble caches and the given read
// cache size, closed at the end of the test.
func openSmallDB(t *testing.T, readCacheSize int64) *DB {
	t.Helper()
	db, err := Open(Options{Dir: t.TempDir(), AppID: testApp, CacheSize: 8 << 20, MemTableSize: 4 << 20, ReadCacheSize: readCacheSize, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestWriteBackAndReadCache checks that the write-back cache and the read
// cache of committed values never change what a transaction sees: writes
// after a scan are seen by the next scan, aborted writes leave the cached
// committed values, deletes hide cached values, and values returned by Get
// are the caller's.
func TestWriteBackAndReadCache(t *testing.T) {
	tests := []struct {
		name      string
		cacheSize int64
	}{
		{"default cache", 0},
		{"tiny cache (evicting)", 2 << 10},
		{"no cache", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openSmallDB(t, tt.cacheSize)
			task := openTask(t, db, 0, "s")
			s := task.Store("s")
			topic := ChangelogTopic(testApp, "s")
			off := int64(0)
			commit := func() {
				t.Helper()
				off++
				if err := task.Commit(map[string]int64{topic: off}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 100 {
				mustPut(t, s, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
			}
			commit()
			// Read everything once (fills the read cache), then change it
			// in a transaction that aborts.
			for i := range 100 {
				if v, ok := mustGet(t, s, fmt.Sprintf("k%03d", i)); !ok || v != fmt.Sprint(i) {
					t.Fatalf("k%03d = %q,%v", i, v, ok)
				}
			}
			mustPut(t, s, "k001", "changed")
			if err := s.Delete([]byte("k002")); err != nil {
				t.Fatal(err)
			}
			if got := scanAll(t, s, "k00"); got != "[k000=0 k001=changed k003=3 k004=4 k005=5 k006=6 k007=7 k008=8 k009=9]" {
				t.Fatalf("scan in txn = %s", got)
			}
			// Writes after a scan are seen by the next one.
			mustPut(t, s, "k000", "later")
			mustPut(t, s, "k002", "back")
			if err := s.Delete([]byte("k003")); err != nil {
				t.Fatal(err)
			}
			if got := scanAll(t, s, "k00"); got != "[k000=later k001=changed k002=back k004=4 k005=5 k006=6 k007=7 k008=8 k009=9]" {
				t.Fatalf("second scan in txn = %s", got)
			}
			task.Abort()
			for _, k := range []string{"k000", "k001", "k002", "k003"} {
				if v, ok := mustGet(t, s, k); !ok || v != k[2:] && v != k[3:] {
					t.Fatalf("%s after abort = %q,%v", k, v, ok)
				}
			}
			if got := scanAll(t, s, "k00"); got != "[k000=0 k001=1 k002=2 k003=3 k004=4 k005=5 k006=6 k007=7 k008=8 k009=9]" {
				t.Fatalf("scan after abort = %s", got)
			}
			// A committed delete hides the cached value; a committed put
			// replaces it.
			if err := s.Delete([]byte("k004")); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, "k005", "five")
			commit()
			if _, ok := mustGet(t, s, "k004"); ok {
				t.Fatal("k004 visible after a committed delete")
			}
			if v, _ := mustGet(t, s, "k005"); v != "five" {
				t.Fatalf("k005 = %q after commit", v)
			}
			if v, ok := committedGet(t, db, "s", 0, "k005"); !ok || v != "five" {
				t.Fatalf("committed k005 = %q,%v", v, ok)
			}
			// A value returned by Get stays unchanged after later writes
			// (in the transaction, committed, and to a buffer Put was
			// given), whether it came from Pebble or the caches.
			for _, k := range []string{"k006", "k007"} {
				v, _, _ := s.Get([]byte(k))
				buf := []byte("new")
				if err := s.Put([]byte(k), buf); err != nil {
					t.Fatal(err)
				}
				copy(buf, "XXX")
				v2, _, _ := s.Get([]byte(k))
				commit()
				v3, _, _ := s.Get([]byte(k))
				if string(v) != k[3:] || string(v2) != "new" || string(v3) != "new" {
					t.Fatalf("%s read %q, %q after a put, %q after its commit; want %q, new, new", k, v, v2, v3, k[3:])
				}
			}
			// An empty value is a value, not a delete.
			mustPut(t, s, "empty", "")
			commit()
			if v, ok := mustGet(t, s, "empty"); !ok || v != "" {
				t.Fatalf("empty = %q,%v", v, ok)
			}
		})
	}
}

// TestReadsWhileCommitApplies holds a commit's batch back from Pebble and
// checks that reads see its values and deletes meanwhile (its keys are not
// evicted, a deleted key is not read back from Pebble, an aborted write
// does not uncover it), and that Checkpoint waits for it.
func TestReadsWhileCommitApplies(t *testing.T) {
	db := openSmallDB(t, 2<<10) // a tiny read cache: it evicts all it may
	task := openTask(t, db, 0, "s")
	s := task.Store("s")
	topic := ChangelogTopic(testApp, "s")
	for i := range 100 {
		mustPut(t, s, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
	}
	if err := task.Commit(map[string]int64{topic: 1}); err != nil {
		t.Fatal(err)
	}
	if err := task.settle(); err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	testHookApply = func() { <-release }
	defer func() { testHookApply = nil }()
	if err := s.Delete([]byte("k001")); err != nil {
		t.Fatal(err)
	}
	for i := 2; i < 60; i++ {
		mustPut(t, s, fmt.Sprintf("k%03d", i), "new")
	}
	if err := task.Commit(map[string]int64{topic: 2}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for i := range 100 {
			k := fmt.Sprintf("k%03d", i)
			want, wantOK := fmt.Sprint(i), true
			switch {
			case i == 1:
				want, wantOK = "", false
			case i >= 2 && i < 60:
				want = "new"
			}
			if v, ok := mustGet(t, s, k); v != want || ok != wantOK {
				t.Fatalf("%s: %s = %q,%v, want %q,%v", when, k, v, ok, want, wantOK)
			}
		}
	}
	check("while applying")
	mustPut(t, s, "k001", "aborted")
	task.Abort()
	check("after an aborted write")
	// Pebble itself still has the first commit's values.
	if v, ok, err := db.Get("s", 0, []byte("k002")); err != nil || string(v) != "2" || !ok {
		t.Fatalf("k002 in Pebble while applying = %q,%v,%v, want the old 2", v, ok, err)
	}

	close(release)
	if off, ok, err := task.Checkpoint("s"); err != nil || !ok || off != 3 {
		t.Fatalf("Checkpoint = %d,%v,%v, want 3", off, ok, err)
	}
	check("applied")
	if _, ok := committedGet(t, db, "s", 0, "k001"); ok {
		t.Fatal("k001 is in Pebble after its delete was applied")
	}
	if v, _ := committedGet(t, db, "s", 0, "k059"); v != "new" {
		t.Fatalf("k059 in Pebble = %q, want new", v)
	}
}

// TestMissesSkipPebbleWhileEveryKeyIsCached checks when a read of a key the
// caches do not hold may skip Pebble: only while the store was empty in
// Pebble when its caches were last dropped and nothing was evicted since.
// A key written to Pebble behind the store's back shows which reads looked.
func TestMissesSkipPebbleWhileEveryKeyIsCached(t *testing.T) {
	tests := []struct {
		name      string
		cacheSize int64
		allCached bool
	}{
		{"default cache", 0, true},
		{"tiny cache (evicting)", 2 << 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openSmallDB(t, tt.cacheSize)
			task := openTask(t, db, 0, "s")
			s := task.Store("s")
			for i := range 200 {
				mustPut(t, s, fmt.Sprintf("k%03d", i), fmt.Sprint(i))
			}
			if err := task.Commit(map[string]int64{ChangelogTopic(testApp, "s"): 1}); err != nil {
				t.Fatal(err)
			}
			if err := task.settle(); err != nil {
				t.Fatal(err)
			}
			if err := db.pdb.Set(dataKey("s", 0, []byte("ghost")), []byte("boo"), nil); err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				k := fmt.Sprintf("k%03d", i)
				if v, ok := mustGet(t, s, k); !ok || v != fmt.Sprint(i) {
					t.Fatalf("Get(%s) = %q, %v, want %d", k, v, ok, i)
				}
			}
			_, ghost := mustGet(t, s, "ghost")
			if ghost == tt.allCached {
				t.Errorf("Get(ghost) found = %v: a miss read Pebble = %v, want %v", ghost, ghost, !tt.allCached)
			}
			// A reopened task looks at Pebble again: it has keys now.
			if err := task.Close(); err != nil {
				t.Fatal(err)
			}
			task = openTask(t, db, 0, "s")
			if v, ok := mustGet(t, task.Store("s"), "ghost"); !ok || v != "boo" {
				t.Errorf("after reopening, Get(ghost) = %q, %v", v, ok)
			}
			if _, ok := mustGet(t, task.Store("s"), "missing"); ok {
				t.Error("after reopening, a missing key was found")
			}
		})
	}
}

// TestPutOwnedKeepsTheValue checks that PutOwned keeps the caller's slice
// instead of a copy, and stores nil as an empty value, not a delete, through
// a commit.
func TestPutOwnedKeepsTheValue(t *testing.T) {
	db := openSmallDB(t, 0)
	task := openTask(t, db, 0, "s")
	s := task.Store("s")
	v := []byte("kept")
	for _, kv := range []struct {
		k string
		v []byte
	}{{"a", v}, {"b", nil}} {
		if err := processors.PutOwned(s, []byte(kv.k), kv.v); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok, err := s.Get([]byte("a")); err != nil || !ok || &got[0] != &v[0] {
		t.Fatalf("Get(a) = %q, %v, %v; want the slice PutOwned was given", got, ok, err)
	}
	if err := task.Commit(map[string]int64{ChangelogTopic(testApp, "s"): 1}); err != nil {
		t.Fatal(err)
	}
	if err := task.settle(); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"a": "kept", "b": ""} {
		if got, ok, err := db.Get("s", 0, []byte(k)); err != nil || !ok || string(got) != want {
			t.Errorf("committed %s = %q, %v, %v; want %q", k, got, ok, err, want)
		}
	}
}
