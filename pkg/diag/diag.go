// Package diag holds Veltrix's user-facing error type: a problem with a stable
// code, a place (file, line, column, dotted path), what was expected and found,
// and a hint that says how to fix it.
//
// Configuration problems are gathered into a List and reported all at once;
// run-time failures of single events carry the same codes (in logs, metric
// labels and DLQ headers). Every code is documented in docs/errors.md.
package diag

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Code is a stable error code such as "VX1101". Codes never change meaning.
type Code string

// Severity says whether a problem stops the configuration from being used.
// The zero value is an error.
type Severity string

// Severities.
const (
	// SeverityError is a problem that makes validate exit 2 and stops run.
	SeverityError Severity = ""
	// SeverityWarning is a setting that works but is probably not what was
	// meant, or is unsafe (a password sent in clear text). It is printed with
	// its code and never changes an exit code. Warnings travel apart from
	// errors (config.Config.Warnings, clustercheck.Result.Warnings), so that
	// a List returned as an error holds errors only.
	SeverityWarning Severity = "warning"
)

// Error is one problem, with its place in the configuration when it has one.
type Error struct {
	Code     Code   `json:"code"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
	Expected string `json:"expected,omitempty"`
	Found    string `json:"found,omitempty"`
	Hint     string `json:"hint,omitempty"`
	// Severity is empty for an error and "warning" for a warning.
	Severity Severity `json:"severity,omitempty"`
}

// Error formats the problem as
//
//	file:line:col CODE path: message
//	  hint: ...
//
// and a warning as "file:line:col warning CODE path: message".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Column > 0 {
				fmt.Fprintf(&b, ":%d", e.Column)
			}
		}
		b.WriteByte(' ')
	}
	if e.Severity == SeverityWarning {
		b.WriteString("warning ")
	}
	b.WriteString(string(e.Code))
	if e.Path != "" {
		b.WriteByte(' ')
		b.WriteString(e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &diag.Error{Code: diag.UnknownKey}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == ""
}

// Pos is a place in a configuration file.
type Pos struct {
	File   string
	Line   int
	Column int
	Path   string
}

// At returns a new Error at p with the given code and message.
func (p Pos) At(code Code, format string, args ...any) *Error {
	return &Error{Code: code, File: p.File, Line: p.Line, Column: p.Column, Path: p.Path, Message: fmt.Sprintf(format, args...)}
}

// With returns a copy of e with the expected and found values set.
func (e *Error) With(expected, found string) *Error {
	c := *e
	c.Expected, c.Found = expected, found
	return &c
}

// WithHint returns a copy of e with the hint set.
func (e *Error) WithHint(format string, args ...any) *Error {
	c := *e
	c.Hint = fmt.Sprintf(format, args...)
	return &c
}

// AsWarning returns a copy of e with severity warning.
func (e *Error) AsWarning() *Error {
	c := *e
	c.Severity = SeverityWarning
	return &c
}

// IsWarning reports whether e is a warning.
func (e *Error) IsWarning() bool { return e.Severity == SeverityWarning }

// List is every problem found in one pass. A nil or empty List is no error.
type List []*Error

// Add appends errs, skipping nils.
func (l *List) Add(errs ...*Error) {
	for _, e := range errs {
		if e != nil {
			*l = append(*l, e)
		}
	}
}

// Merge appends every *Error found in err (a List, an *Error or a join of them);
// any other error is added with code Internal.
func (l *List) Merge(err error) {
	if err == nil {
		return
	}
	var list List
	var one *Error
	switch {
	case errors.As(err, &list):
		*l = append(*l, list...)
	case errors.As(err, &one):
		*l = append(*l, one)
	default:
		*l = append(*l, &Error{Code: Internal, Message: err.Error()})
	}
}

// Err returns the list sorted by place as an error, or nil when it is empty.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// Sort orders problems by file, line and column, keeping the order of
// problems at the same place.
func (l List) Sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
}

// Error joins the problems, one per line (hints on their own lines).
func (l List) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Codes returns the codes in the list, in order.
func (l List) Codes() []Code {
	out := make([]Code, len(l))
	for i, e := range l {
		out[i] = e.Code
	}
	return out
}

// AsList returns the problems in err: the List itself, a single *Error as a
// one-element List, or nil when err carries no *Error.
func AsList(err error) List {
	var list List
	if errors.As(err, &list) {
		return list
	}
	var one *Error
	if errors.As(err, &one) {
		return List{one}
	}
	return nil
}

// Unwrap returns the problems, so that errors.Is and errors.As see each one
// (errors.Is(err, &diag.Error{Code: diag.ChangelogInvalid})).
func (l List) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}
