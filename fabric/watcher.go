package fabric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Watcher keeps a current Topology: it rescans when the kernel announces
// a PCI change (a uevent, so hot-plug is seen within Settle plus one scan)
// and every Poll as a backstop (AER counters and link retraining send no
// uevent).
type Watcher struct {
	Scanner *Scanner
	// Uevents is the kernel event source; nil opens the netlink socket in
	// Run, and if that fails (no permission, no netlink) the watcher polls
	// only, and says so in the log.
	Uevents UeventSource
	// Poll is the backstop rescan period (default 5s).
	Poll time.Duration
	// Settle is how long to wait after a uevent for its burst to end
	// before rescanning (default 50ms).
	Settle time.Duration
	Logger *slog.Logger
	// OnScan is called after every successful scan, from Run's goroutine,
	// with the new topology and whether it differs from the previous one.
	OnScan func(t *Topology, changed bool)

	cur atomic.Pointer[Topology]
}

// Topology returns the latest topology (nil before the first scan).
func (w *Watcher) Topology() *Topology { return w.cur.Load() }

// Rescan scans now and publishes the result.
func (w *Watcher) Rescan() (*Topology, error) {
	t, err := w.Scanner.Scan()
	if err != nil {
		return nil, err
	}
	old := w.cur.Load()
	changed := !old.Equal(t)
	if changed || old == nil {
		w.cur.Store(t)
	} else {
		// Same fabric: Topology keeps the old value (readers may compare
		// pointers); OnScan still gets the new scan time.
		t = &Topology{Time: t.Time, Devices: old.Devices, Slots: old.Slots}
	}
	if w.OnScan != nil {
		w.OnScan(t, changed)
	}
	return t, nil
}

// Run scans, then rescans on uevents and every Poll until ctx is done.
// It returns an error only if the first scan fails.
func (w *Watcher) Run(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	poll, settle := w.Poll, w.Settle
	if poll <= 0 {
		poll = 5 * time.Second
	}
	if settle <= 0 {
		settle = 50 * time.Millisecond
	}
	if _, err := w.Rescan(); err != nil {
		return fmt.Errorf("fabric: first scan: %w", err)
	}
	src := w.Uevents
	if src == nil {
		n, err := OpenUevents()
		if err != nil {
			log.Warn("fabric: no kernel uevents, polling only", "poll", poll, "err", err)
		} else {
			src = n
		}
	}
	kick := make(chan struct{}, 1)
	if src != nil {
		defer src.Close()
		go func() {
			for {
				ev, err := src.Read(ctx)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
						log.Warn("fabric: uevents stopped, polling only", "err", err)
					}
					return
				}
				if ev.Subsystem != "pci" && ev.Subsystem != "pci_bus" && ev.Subsystem != "pci_slot" {
					continue
				}
				log.Debug("fabric: uevent", "action", ev.Action, "devpath", ev.DevPath)
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}()
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			// Let the burst (a device and its functions, the slot) settle.
			select {
			case <-time.After(settle):
			case <-ctx.Done():
				return nil
			}
			select {
			case <-kick:
			default:
			}
		case <-tick.C:
		}
		if _, err := w.Rescan(); err != nil {
			log.Warn("fabric: rescan failed, keeping the last topology", "err", err)
		}
	}
}
