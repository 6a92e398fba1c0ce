package engine

// LockedBuffer is lockedBuffer (lag_internal_test.go) for the package's
// external tests: a log destination an engine writes while the test reads.
type LockedBuffer = lockedBuffer
