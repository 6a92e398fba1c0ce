// Package configwatch calls a function when the configuration files change:
// it watches directories (not recursively) and, after a burst of changes to
// YAML files in them has been quiet for a moment, calls back once. Editors
// that save by renaming a new file over the old one are covered, since the
// directory, not the file, is watched.
package configwatch

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Quiet is how long changes must have stopped before the callback runs.
const Quiet = 300 * time.Millisecond

// Watch watches dirs until ctx ends, calling changed after each burst of
// changes to .yaml or .yml files in them. It returns once the watch is set
// up; changed runs on the watcher's goroutine, one call at a time.
func Watch(ctx context.Context, dirs []string, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch configuration: %w", err)
	}
	for _, d := range dirs {
		if err := w.Add(d); err != nil {
			_ = w.Close()
			return fmt.Errorf("watch configuration directory %s: %w", d, err)
		}
	}
	go func() {
		defer w.Close()
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ext := strings.ToLower(filepath.Ext(ev.Name)); (ext == ".yaml" || ext == ".yml") && !ev.Has(fsnotify.Chmod) {
					fire = time.After(Quiet)
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			case <-fire:
				fire = nil
				changed()
			}
		}
	}()
	return nil
}
