//go:build tools

// Package tools pins crane, the baseline of the image-check benchmark.
package tools

import (
	_ "github.com/google/go-containerregistry/cmd/crane"
)
