package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// fullDiskFS is the real file system until full is set; then creating a
// file, writing to one or syncing one fails with ENOSPC, as on a full disk.
type fullDiskFS struct {
	vfs.FS
	full *atomic.Bool
}

func (f fullDiskFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if f.full.Load() {
		return nil, &fs.PathError{Op: "create", Path: name, Err: syscall.ENOSPC}
	}
	file, err := f.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return fullDiskFile{File: file, full: f.full}, nil
}

func (f fullDiskFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	if f.full.Load() {
		return nil, &fs.PathError{Op: "create", Path: newname, Err: syscall.ENOSPC}
	}
	file, err := f.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	return fullDiskFile{File: file, full: f.full}, nil
}

type fullDiskFile struct {
	vfs.File
	full *atomic.Bool
}

func (f fullDiskFile) Write(p []byte) (int, error) {
	if f.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.Write(p)
}

func (f fullDiskFile) WriteAt(p []byte, off int64) (int, error) {
	if f.full.Load() {
		return 0, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

func (f fullDiskFile) Sync() error {
	if f.full.Load() {
		return syscall.ENOSPC
	}
	return f.File.Sync()
}

// diskFullChild is set in the child process of TestDiskFullDuringCommit.
const diskFullChild = "VELTRIX_TEST_DISKFULL_DIR"

// A full disk while a committed transaction is applied to Pebble. Pebble
// panics when it cannot close its write-ahead log (db.go rotateWAL: "If we
// failed to close the previous log it is possible we lost a write"), and the
// panic is fatal to the process, so the full-disk phase runs in a child
// process: it must not carry on as if the write had landed (it crashes, or
// the task reports an error naming ENOSPC). Then, with space back, the
// state is not wiped, its data and checkpoint agree (the failed batch is
// whole or absent: a restore replays the rest from the changelog) and it
// takes new commits.
func TestDiskFullDuringCommit(t *testing.T) {
	if dir := os.Getenv(diskFullChild); dir != "" {
		os.Exit(diskFullPhase(dir))
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFullDuringCommit$", "-test.count=1")
	cmd.Env = append(os.Environ(), diskFullChild+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		t.Fatalf("a commit on a full disk went on as if it had landed:\n%s", out)
	case errors.As(err, &exit) && exit.ExitCode() == diskFullReported:
		t.Logf("the full disk was reported as an error: %s", strings.TrimSpace(string(out)))
	case errors.As(err, &exit):
		t.Logf("the full disk ended the process (exit %d): %s", exit.ExitCode(), firstLine(string(out)))
	default:
		t.Fatal(err)
	}

	db := openDB(t, dir)
	if db.Wiped() {
		t.Fatal("the state was wiped after a full disk")
	}
	topic := ChangelogTopic(testApp, "s")
	off, ok, err := db.Checkpoint("s", 1)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := committedGet(t, db, "s", 1, "k")
	switch {
	case ok && off == 11 && v == "good":
		// The failed batch left nothing: a restore replays from 11.
	case ok && off == 21 && v == "lost":
		t.Log("the batch reached Pebble before the disk filled up; it is whole")
	default:
		t.Fatalf("after the full disk: checkpoint %d,%v with k=%q: the data and its checkpoint disagree", off, ok, v)
	}
	task := openTask(t, db, 1, "s")
	mustPut(t, task.Store("s"), "k", "after")
	if err := task.Commit(map[string]int64{topic: 30}); err != nil {
		t.Fatal(err)
	}
	if off, ok, err := task.Checkpoint("s"); err != nil || !ok || off != 31 {
		t.Fatalf("checkpoint %d,%v,%v once space is back, want 31", off, ok, err)
	}
	if err := task.Close(); err != nil {
		t.Fatal(err)
	}
}

// diskFullReported is the child's exit code when the task reported the
// full disk as an error naming ENOSPC.
const diskFullReported = 3

// diskFullPhase commits once with space, then fills the disk and commits
// again; it returns the process's exit code (0: no error seen).
func diskFullPhase(dir string) int {
	full := new(atomic.Bool)
	db, err := Open(Options{Dir: dir, AppID: testApp, Logger: discard, FS: fullDiskFS{FS: vfs.Default, full: full}})
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	topic := ChangelogTopic(testApp, "s")
	task, err := db.OpenTask(1, "s")
	if err != nil {
		fmt.Println("open task:", err)
		return 1
	}
	s := task.Store("s")
	if err := errors.Join(s.Put([]byte("k"), []byte("good")), task.Commit(map[string]int64{topic: 10})); err != nil {
		fmt.Println("first commit:", err)
		return 1
	}
	// Closed and opened again, so that the first commit is on disk (commits
	// are not synced: a crash may lose a tail the changelog still holds).
	if err := errors.Join(task.Close(), db.Close()); err != nil {
		fmt.Println("close:", err)
		return 1
	}
	if db, err = Open(Options{Dir: dir, AppID: testApp, Logger: discard, FS: fullDiskFS{FS: vfs.Default, full: full}}); err != nil {
		fmt.Println("open again:", err)
		return 1
	}
	if task, err = db.OpenTask(1, "s"); err != nil {
		fmt.Println("open task again:", err)
		return 1
	}
	s = task.Store("s")
	if off, ok, err := task.Checkpoint("s"); err != nil || !ok || off != 11 {
		fmt.Printf("checkpoint %d,%v,%v after the first commit, want 11\n", off, ok, err)
		return 1
	}
	full.Store(true)
	// Enough data to need the disk (the write-ahead log, a memtable flush).
	for i := 0; i < 2000; i++ {
		_ = s.Put([]byte(fmt.Sprintf("k%04d", i)), make([]byte, 1024))
	}
	_ = s.Put([]byte("k"), []byte("lost"))
	commitErr := task.Commit(map[string]int64{topic: 20})
	_, _, cpErr := task.Checkpoint("s")
	failed := errors.Join(commitErr, cpErr, task.Close(), db.Close())
	if failed == nil {
		fmt.Println("no error on a full disk")
		return 0
	}
	fmt.Println(failed)
	if !errors.Is(failed, syscall.ENOSPC) {
		return 1
	}
	return diskFullReported
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
