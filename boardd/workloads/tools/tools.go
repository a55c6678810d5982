//go:build tools

// Package tools keeps the mains that `make containerd-bins` builds
// (containerd, its runc shim and runc) resolvable from go.mod, so the
// static binaries come from the same pinned module versions as the client.
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/opencontainers/runc"
)
