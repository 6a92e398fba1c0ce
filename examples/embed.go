// Package examples embeds the bundled example applications, so that
// `veltrix dev` runs them from any directory.
package examples

import "embed"

// Ecommerce is the examples/ecommerce directory: veltrix.yaml, templates/,
// rules/ and tests/.
//
//go:embed ecommerce
var Ecommerce embed.FS
