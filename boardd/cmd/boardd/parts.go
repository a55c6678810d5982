package main

import (
	"context"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/daemon"
	"podos.dev/podos/boardd/watchdog"
	"podos.dev/podos/fabric"
	"podos.dev/podos/fabric/fabricd"
)

// parts are the optional parts of boardd, chosen by flags.
type parts struct {
	watchdog        string
	watchdogTimeout time.Duration
	sysfs           string
	workloads       bool
	containerdBin   string
	containerdDir   string
}

// plugs composes the optional parts into the daemon.
func (p parts) plugs(cfg *boardconfig.Config) []daemon.Plug {
	var out []daemon.Plug
	if cfg.Fabric != nil && p.sysfs != "" {
		out = append(out, fabricd.Plug(p.sysfs, fabric.SourceOptions{}),
			func(d *daemon.Daemon) (daemon.Component, error) {
				d.RegisterMetrics(fabricd.MetricsCollector(d.Store()))
				return nil, nil
			})
	}
	if p.workloads {
		out = append(out, p.workloadsPlug())
	}
	if p.watchdog != "" {
		// Last, so it is armed only once every other part is built.
		out = append(out, func(d *daemon.Daemon) (daemon.Component, error) {
			return daemon.ComponentFunc(func(ctx context.Context) error {
				return watchdog.Run(ctx, watchdog.Config{
					Path: p.watchdog, Timeout: p.watchdogTimeout,
					Healthy: d.Healthy, Logger: d.Logger().With("component", "watchdog"),
				})
			}), nil
		})
	}
	return out
}
