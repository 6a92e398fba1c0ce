package state

import (
	"fmt"
	"testing"
)

func TestScanFrom(t *testing.T) {
	db := openDB(t, t.TempDir())
	task := openTask(t, db, 0, "s")
	s := task.Store("s")
	for _, k := range []string{"\x00t1", "\x00t2", "a1", "a2", "a3", "b1", "\xff"} {
		mustPut(t, s, k, "v"+k)
	}
	if err := task.Commit(map[string]int64{ChangelogTopic(testApp, "s"): 0}); err != nil {
		t.Fatal(err)
	}
	settleAll(t, db)
	for _, tt := range []struct {
		prefix, from string
		limit        int
		want         string
	}{
		{"", "", 2, "[\x00t1 \x00t2]"},
		{"", "\x01", 2, "[a1 a2]"},
		{"", "\x01", 0, "[a1 a2 a3 b1 \xff]"},
		{"a", "\x01", 0, "[a1 a2 a3]"}, // from before the prefix: the prefix wins
		{"a", "a2", 0, "[a2 a3]"},
		{"a", "b", 0, "[]"},
		{"\xff", "", 1, "[\xff]"},
	} {
		kvs, err := db.ScanFrom("s", 0, []byte(tt.prefix), []byte(tt.from), tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		keys := []string{}
		for _, kv := range kvs {
			keys = append(keys, string(kv.Key))
			if string(kv.Value) != "v"+string(kv.Key) {
				t.Errorf("value of %q = %q", kv.Key, kv.Value)
			}
		}
		if got := fmt.Sprint(keys); got != tt.want {
			t.Errorf("ScanFrom(%q, %q, %d) = %q, want %q", tt.prefix, tt.from, tt.limit, got, tt.want)
		}
	}
}
