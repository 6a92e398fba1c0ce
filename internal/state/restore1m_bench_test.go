//go:build restorebench

package state

import "testing"

// BenchmarkRestore1M restores 1,000,000 records (distinct keys, 64-byte
// values) from a changelog in kfake (or Apache Kafka with VELTRIX_TEST_KAFKA)
// and reports records/s. Filling
// the changelog takes a while, so it is behind a build tag:
//
//	go test -tags restorebench -run '^$' -bench Restore1M -benchtime 1x ./internal/state/
func BenchmarkRestore1M(b *testing.B) { benchRestore(b, 1_000_000) }
