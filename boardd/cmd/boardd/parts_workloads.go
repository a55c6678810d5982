//go:build !noworkloads

package main

import (
	"podos.dev/podos/boardd/daemon"
	"podos.dev/podos/boardd/workloads/wire"
)

// workloadsSupported: this build links the workloads (containerd client).
const workloadsSupported = true

func (p parts) workloadsPlug() daemon.Plug {
	return wire.Plug(wire.Options{BinDir: p.containerdBin, ContainerdDir: p.containerdDir})
}
