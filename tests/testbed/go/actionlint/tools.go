//go:build tools

// Package tools pins actionlint, which lints the release workflow.
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
