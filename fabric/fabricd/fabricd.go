// Package fabricd wires fabric into boardd: a daemon Plug that runs a
// fabric.Source, turns its updates into events (Kind fabric) and into the
// snapshot's Fabric field, serves the fabric over Redfish (Fabrics and
// Chassis PCIeDevices, with Port.Reset actions) and offers a Prometheus
// collector of the snapshot's fabric.
//
// In boardd's main:
//
//	o.Plugs = append(o.Plugs, fabricd.Plug("/sys", fabric.SourceOptions{}))
//
// and, where the metrics registry is built:
//
//	reg.MustRegister(fabricd.MetricsCollector(store))
package fabricd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/daemon"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/redfish"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/fabric"
	"podos.dev/podos/fabric/redfishview"
)

// Plug returns the daemon plug that watches the PCIe fabric under sysRoot
// ("/sys") against the board config's fabric section.
func Plug(sysRoot string, o fabric.SourceOptions) daemon.Plug {
	return func(d *daemon.Daemon) (daemon.Component, error) {
		cfg := d.Config()
		if o.Logger == nil {
			o.Logger = d.Logger().With("component", "fabric")
		}
		f := New(sysRoot, cfg, d.Store(), d.Events(), o)
		d.AddRedfishTree(f)
		return f, nil
	}
}

// Fabric is the wired fabric: a daemon Component and a redfish.Tree.
type Fabric struct {
	Source *fabric.Source
	Acts   *fabric.Actions
	cfg    *boardconfig.Config
	store  *snapshot.Store
	emit   *events.Emitter
	log    *slog.Logger
	rollup snapshot.Rollup // ours, kept across other writers' swaps (Run's goroutine only)
}

// New builds the wiring without a daemon (tests, other hosts).
func New(sysRoot string, cfg *boardconfig.Config, store *snapshot.Store, emit *events.Emitter, o fabric.SourceOptions) *Fabric {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Fabric{
		Source: fabric.NewSource(sysRoot, cfg.Fabric, o),
		Acts:   &fabric.Actions{Root: sysRoot},
		cfg:    cfg, store: store, emit: emit, log: o.Logger,
	}
}

// Run watches the fabric until ctx is done: every update is emitted as
// events and published in the snapshot. The collector rebuilds snapshots
// from the last one, so Fabric survives its swaps; if a swap of ours is
// overwritten in a race, the next store change republishes it.
func (f *Fabric) Run(ctx context.Context) error {
	updates, cancel := f.Source.Subscribe(64)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- f.Source.Run(ctx) }()
	for {
		changed := f.store.Changed()
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		case u := <-updates:
			f.publish(u.Topology, u.Findings)
			for _, ev := range fabric.Events(u, f.origin) {
				if f.emit == nil {
					continue
				}
				if _, err := f.emit.Emit(ev); err != nil {
					f.log.Warn("fabric event not persisted", "err", err)
				}
			}
		case <-changed:
			// Another writer (the collector) swapped in a snapshot built
			// before ours, or rebuilt the subsystem roll-ups without
			// Fabric: put ours back.
			t := f.Source.Topology()
			if t == nil {
				continue
			}
			s, fs := f.store.Load(), f.Source.Findings()
			st, why := fabric.Rollup(fs)
			r, ok := s.Subsystems[health.Fabric]
			if s.Fabric != t || (ok && (r.State != st || r.Reason != why)) || (!ok && st != health.OK) {
				f.publish(t, fs)
			}
		}
	}
}

func (f *Fabric) publish(t *fabric.Topology, fs []fabric.Finding) {
	f.store.Update(func(cur *snapshot.Snapshot) *snapshot.Snapshot { return f.build(cur, t, fs) })
}

func (f *Fabric) build(cur *snapshot.Snapshot, t *fabric.Topology, fs []fabric.Finding) *snapshot.Snapshot {
	n := &snapshot.Snapshot{}
	if cur != nil {
		*n = *cur
	}
	n.Seq++
	n.Time = time.Now()
	n.Fabric = t
	subs := make(map[health.Subsystem]snapshot.Rollup, len(n.Subsystems)+1)
	for k, v := range n.Subsystems {
		subs[k] = v
	}
	st, why := fabric.Rollup(fs)
	if f.rollup.State != st || f.rollup.Since.IsZero() {
		f.rollup.Since = n.Time
	}
	f.rollup.State, f.rollup.Reason = st, why
	subs[health.Fabric] = f.rollup
	n.Subsystems = subs
	return n
}

func (f *Fabric) view(t *fabric.Topology) redfishview.View {
	return redfishview.View{Topology: t, Findings: f.Source.Findings(), Expected: f.cfg.Fabric, ChassisID: f.cfg.Board.ID}
}

// origin is the Redfish URI of a finding's or change's subject.
func (f *Fabric) origin(subject string) string {
	if t := f.Source.Topology(); t != nil && t.Device(subject) != nil {
		return redfishview.Root + "/Chassis/" + f.cfg.Board.ID + "/PCIeDevices/" + redfishview.ID(subject[:len(subject)-2])
	}
	return redfishview.Root + "/Fabrics/" + f.view(nil).FabricID()
}

// Resources implements redfish.Tree from the snapshot's fabric.
func (f *Fabric) Resources(s *snapshot.Snapshot) map[string]map[string]any {
	if s == nil || s.Fabric == nil {
		return nil
	}
	return redfishview.Resources(f.view(s.Fabric))
}

// Actions implements redfish.Tree: Port.Reset on every configured
// downstream port, resolved to a BDF when called.
func (f *Fabric) Actions() map[string]redfish.Action {
	out := map[string]redfish.Action{}
	for _, uri := range redfishview.ConfiguredResetTargets(f.cfg.Fabric) {
		out[uri] = redfish.Action{Priv: auth.ConfigureComponents, Do: func(ctx context.Context, body map[string]any) error {
			t := f.Source.Topology()
			bdf, ok := redfishview.ResetTargets(f.view(t))[uri]
			if !ok {
				return fmt.Errorf("%w: the port of %s is not on the bus", redfish.ErrBadRequest, uri)
			}
			err := redfishview.Reset(ctx, f.Acts, t, bdf, body)
			f.actionEvent(uri, bdf, body, err)
			if errors.Is(err, redfishview.ErrBadRequest) {
				return fmt.Errorf("%w: %v", redfish.ErrBadRequest, err)
			}
			return err
		}}
	}
	return out
}

func (f *Fabric) actionEvent(uri, bdf string, body map[string]any, err error) {
	if f.emit == nil {
		return
	}
	rt, _ := body["ResetType"].(string)
	if rt == "" {
		rt = "ForceRestart"
	}
	ev := events.Event{Kind: events.KindAction, Source: bdf, Severity: health.OK, Origin: uri[:len(uri)-len("/Actions/Port.Reset")],
		Message: fmt.Sprintf("Port %s reset (%s).", bdf, rt), MessageID: "Base.1.22.Success",
		Data: map[string]string{"action": "Port.Reset", "reset_type": rt}}
	if err != nil {
		ev.Severity = health.Warning
		ev.Message = fmt.Sprintf("Port %s reset (%s) failed: %v.", bdf, rt, err)
		ev.MessageID = "Base.1.22.GeneralError"
	}
	if _, err := f.emit.Emit(ev); err != nil {
		f.log.Warn("fabric action event not persisted", "err", err)
	}
}

// MetricsCollector exports the snapshot's fabric to Prometheus.
func MetricsCollector(store *snapshot.Store) *fabric.Collector {
	return fabric.NewCollector(func() *fabric.Topology {
		if s := store.Load(); s != nil {
			return s.Fabric
		}
		return nil
	})
}
