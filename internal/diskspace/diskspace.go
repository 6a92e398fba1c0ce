// Package diskspace reads how much room a file system has left. The engine
// uses it to stop writing state before its disk is full: Pebble cannot carry
// on after a write fails for want of space (it ends the process).
package diskspace

import "errors"

// ErrUnsupported is returned where the platform has no way to ask.
var ErrUnsupported = errors.New("diskspace: not supported on this platform")
