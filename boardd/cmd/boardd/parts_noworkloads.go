//go:build noworkloads

// The noworkloads build leaves out the workloads and the containerd
// client they link, which costs about 15 MB of binary and 10 MB of RSS
// (make bench-boardd measures both builds): for boards that only watch
// their hardware.

package main

import (
	"errors"

	"podos.dev/podos/boardd/daemon"
)

const workloadsSupported = false

func (p parts) workloadsPlug() daemon.Plug {
	return func(*daemon.Daemon) (daemon.Component, error) {
		return nil, errors.New("--workloads: this boardd was built without workloads (build tag noworkloads)")
	}
}
