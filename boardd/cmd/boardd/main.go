// Command boardd is the podos board daemon: it watches the board's
// sensors through its BMC, applies the board policy, and serves the
// board's health over Redfish (HTTPS) and Prometheus (HTTP).
//
//	boardd --bmc ipmi+lan://admin:password@127.0.0.1:623 --state-dir /var/lib/boardd \
//	       [--config board.yaml] [--listen :8443] [--metrics-listen :9102] \
//	       [--admin-password-file FILE] [--log-level info] [--log-format text] \
//	       [--watchdog /dev/watchdog0] [--fabric-sysfs /sys] \
//	       [--workloads --containerd-bin DIR --containerd-dir DIR]
//
// The parts: the BMC collector, policy, event log, SEL sink, Redfish and
// metrics always run; the PCIe fabric watcher runs when the board config
// has a fabric section (and --fabric-sysfs is not empty); the hardware
// watchdog is petted only with --watchdog (never implicitly: a host run
// must not arm the host's watchdog); workloads run only with --workloads
// (they supervise containerd).
//
// This binary does not link the workloads (the containerd client costs
// about 10 MB of RSS, make bench-boardd): with --workloads it execs
// boardd-workloads (boardd/cmd/boardd-workloads, same flags) from its own
// directory or PATH, keeping its pid. See boardd/cmd/internal/boarddcli.
//
// A bad flag or config exits with status 2 and one line saying what is
// wrong; SIGTERM or SIGINT shuts down cleanly (status 0).
package main

import "podos.dev/podos/boardd/cmd/internal/boarddcli"

// version is set at link time (-X main.version=...).
var version = "dev"

func main() {
	boarddcli.Main(boarddcli.Build{Version: version, Delegate: boarddcli.ExecWorkloads})
}
