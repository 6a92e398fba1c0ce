//go:build unix

package diskspace

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Free returns the bytes an unprivileged process may still write on the
// file system that holds dir (its available blocks, not counting those
// reserved for root).
func Free(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("diskspace: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // the field types differ by platform
}
