// Package wire plugs the workloads into the boardd daemon: a supervised
// containerd, the workload Manager, the Protector on the daemon's health
// (snapshot store and bus) and the /podos/v1 API mounted behind the
// Redfish authentication.
//
//	daemon.New(daemon.Options{..., Plugs: []daemon.Plug{wire.Plug(wire.Options{})}})
package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/api"
	"podos.dev/podos/boardd/daemon"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/ctrd"
)

// Options configure the workloads part of boardd. Zero values take the
// defaults noted.
type Options struct {
	// BinDir holds containerd, containerd-shim-runc-v2 and runc (empty:
	// PATH).
	BinDir string
	// ContainerdDir holds containerd's root, state, config and socket
	// (default /run/podos/containerd: tmpfs on the board; keep it short,
	// the socket path must fit 100 bytes).
	ContainerdDir string
	// ContainerdOutput receives containerd's own log (default stderr).
	ContainerdOutput io.Writer
	// Disabled skips everything (a board without workloads).
	Disabled bool
}

// emitter adapts the daemon's Emitter (persist, then publish) to the
// workloads.EventSink.
type emitter struct{ e *events.Emitter }

func (a emitter) Append(ev events.Event) (events.Event, error) { return a.e.Emit(ev) }

// Roles maps each configured sensor name to its role.
func Roles(cfg *boardconfig.Config) map[string]boardconfig.Role {
	out := map[string]boardconfig.Role{}
	for _, s := range cfg.Sensors {
		out[s.Name] = s.Role
	}
	return out
}

// Plug returns the daemon plug: it builds the parts and mounts the API in
// New; the component it returns runs containerd, the Manager and the
// Protector until the daemon stops.
func Plug(o Options) daemon.Plug {
	return func(d *daemon.Daemon) (daemon.Component, error) {
		if o.Disabled {
			return nil, nil
		}
		cfg := d.Config()
		log := d.Logger()
		dir := o.ContainerdDir
		if dir == "" {
			dir = "/run/podos/containerd"
		}
		cd, err := ctrd.NewDaemon(ctrd.DaemonConfig{BinDir: o.BinDir, Dir: dir, Output: o.ContainerdOutput, Logger: log})
		if err != nil {
			return nil, err
		}
		rt, err := ctrd.NewRuntime(ctrd.RuntimeConfig{Address: cd.Address(), RuncPath: cd.RuncPath(), FIFODir: filepath.Join(dir, "fifo"), Logger: log})
		if err != nil {
			return nil, err
		}
		m, err := workloads.New(workloads.Options{
			Runtime:  rt,
			StateDir: filepath.Join(d.StateDir(), "workloads"),
			Config:   cfg.Workloads,
			Events:   emitter{d.Events()},
			Logger:   log,
		})
		if err != nil {
			rt.Close()
			return nil, err
		}
		beat := d.Heartbeats().Register("workloads-protector", 2*time.Minute)
		p := workloads.NewProtector(workloads.ProtectorConfig{
			Manager: m, Policy: cfg.Policy, Roles: Roles(cfg),
			Store: d.Store(), Bus: d.Bus(), Logger: log, Beat: beat.Beat,
		})
		d.Mount(api.Prefix, api.New(api.Options{Workloads: m, Logger: log}))
		return daemon.ComponentFunc(func(ctx context.Context) error {
			defer rt.Close()
			return runAll(ctx, cd.Run, func(ctx context.Context) error {
				// The Manager retries until containerd answers; waiting
				// here only keeps the first start's log quiet.
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				if err := cd.Ready(rctx); err != nil && ctx.Err() == nil {
					log.Warn("containerd not ready yet; workloads will start when it is", "err", err)
				}
				cancel()
				return m.Run(ctx)
			}, p.Run)
		}), nil
	}
}

// runAll runs fns until ctx ends or one fails; it returns the first error.
func runAll(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(fns))
	for _, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err, ok := <-errs; ok {
		return fmt.Errorf("workloads: %w", err)
	}
	return nil
}
