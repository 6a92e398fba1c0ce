// Package docs embeds the reference documents the binary serves itself:
// the error catalogue (errors.md), which the console shows at /errors so
// that a DLQ record's code links to its entry with no network.
package docs

import _ "embed"

// Errors is docs/errors.md: one "## VXnnnn: title" section per code.
//
//go:embed errors.md
var Errors string
