//go:build tools

// Package tools pins the kwok controller that stands in for the kubelet.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
