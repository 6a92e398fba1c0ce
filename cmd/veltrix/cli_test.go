package main

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// execute runs the veltrix command in-process with args and returns its
// stdout, stderr (what main would print: the command's own stderr plus the
// returned error's text) and exit code.
func execute(t *testing.T, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(ctx)
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code, err
}
