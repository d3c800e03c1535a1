//go:build tools

// Package tools pins kube-router, the real node's NetworkPolicy enforcer
// (run as its firewall only).
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
