// Command boardd-workloads is boardd (boardd/cmd/boardd, same flags) with
// the workloads linked in: --workloads runs the board config's workloads
// under a supervised containerd. boardd execs it for --workloads; it runs
// as boardd does without that flag.
package main

import (
	"podos.dev/podos/boardd/cmd/internal/boarddcli"
	"podos.dev/podos/boardd/daemon"
	"podos.dev/podos/boardd/workloads/wire"
)

// version is set at link time (-X main.version=...).
var version = "dev"

func main() {
	boarddcli.Main(boarddcli.Build{
		Version: version,
		Workloads: func(bin, dir string) daemon.Plug {
			return wire.Plug(wire.Options{BinDir: bin, ContainerdDir: dir})
		},
	})
}
