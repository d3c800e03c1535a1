//go:build tools

// Package tools pins the local-path provisioner behind the real node's
// default StorageClass (as in k3s).
package tools

import _ "github.com/rancher/local-path-provisioner"
