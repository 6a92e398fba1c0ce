package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/internal/config"
)

// The transactional id follows the group instance id: the same for the same
// app, host and state dir path (a restart, with or without the dir's
// contents), different for another dir or app.instance_id, and prefixed by
// app.id.
func TestTransactionalIDFollowsTheMember(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := func(app, instance, stateDir string) *config.Config {
		return &config.Config{App: config.App{ID: app, InstanceID: instance, StateDir: stateDir}}
	}
	base := TransactionalID(cfg("orders", "", dir))
	if !strings.HasPrefix(base, "orders-"+host+"-") {
		t.Errorf("TransactionalID = %q, want orders-%s-<hash of the state dir>", base, host)
	}
	for _, c := range []struct {
		name string
		cfg  *config.Config
		same bool
	}{
		{"same dir", cfg("orders", "", dir), true},
		{"same dir, relative path", cfg("orders", "", relTo(t, dir)), true},
		{"another dir", cfg("orders", "", filepath.Join(dir, "other")), false},
		{"another app", cfg("payments", "", dir), false},
		{"app.instance_id", cfg("orders", "pod-3", dir), false},
	} {
		got := TransactionalID(c.cfg)
		if (got == base) != c.same {
			t.Errorf("%s: TransactionalID = %q, base %q: want same=%v", c.name, got, base, c.same)
		}
	}
	if got := TransactionalID(cfg("orders", "pod-3", dir)); got != "orders-pod-3" {
		t.Errorf("with app.instance_id: TransactionalID = %q, want orders-pod-3", got)
	}
}

// relTo is dir relative to the working directory.
func relTo(t *testing.T, dir string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, dir)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
