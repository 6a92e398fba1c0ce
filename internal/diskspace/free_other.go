//go:build !unix

package diskspace

// Free returns ErrUnsupported: the engine then does not guard its disk.
func Free(string) (int64, error) { return 0, ErrUnsupported }
