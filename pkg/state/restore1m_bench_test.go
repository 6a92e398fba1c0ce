//go:build restorebench

package state

import "testing"

// BenchmarkRestore1M restores 1,000,000 records (distinct keys, 64-byte
// values) from an in-process kfake changelog and reports records/s. Filling
// the changelog takes a while, so it is behind a build tag:
//
//	go test -tags restorebench -run '^$' -bench Restore1M -benchtime 1x ./pkg/state/
func BenchmarkRestore1M(b *testing.B) { benchRestore(b, 1_000_000) }
