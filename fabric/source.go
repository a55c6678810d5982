package fabric

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	boardconfig "podos.dev/podos/board-configs"
)

// Change is one function that appeared, disappeared or changed (link,
// AER counters, driver...) between two topologies.
type Change struct {
	Kind string `json:"kind"` // added | removed | changed
	BDF  string `json:"bdf"`
}

// Diff lists what changed from old to cur, by BDF.
func Diff(old, cur *Topology) []Change {
	var out []Change
	if old == nil {
		old = &Topology{}
	}
	if cur == nil {
		cur = &Topology{}
	}
	for _, d := range cur.Devices {
		o := old.Device(d.BDF)
		switch {
		case o == nil:
			out = append(out, Change{"added", d.BDF})
		case !equalJSON(o, &d):
			out = append(out, Change{"changed", d.BDF})
		}
	}
	for _, d := range old.Devices {
		if cur.Device(d.BDF) == nil {
			out = append(out, Change{"removed", d.BDF})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.BDF, b.BDF) })
	return out
}

// Update is what a Source tells its subscribers: the fabric changed or
// its findings did.
type Update struct {
	Time     time.Time `json:"time"`
	Topology *Topology `json:"topology"`
	Findings []Finding `json:"findings"`
	// Previous are the findings before this update.
	Previous []Finding `json:"previous,omitempty"`
	Changes  []Change  `json:"changes,omitempty"`
}

// Source is the fabric as boardd sees it: a Watcher plus the board
// config's expectations. Run it as a daemon component; read Topology and
// Findings at any time; Subscribe for updates.
type Source struct {
	Watcher  *Watcher
	Expected *boardconfig.Fabric
	// AERWindow is how far back the AER baseline is taken (default 1 minute).
	AERWindow time.Duration
	Logger    *slog.Logger

	mu       sync.Mutex
	topo     *Topology
	findings []Finding
	aer      []*AERSample // oldest first
	subs     map[chan Update]struct{}
}

// SourceOptions tune NewSource.
type SourceOptions struct {
	Poll    time.Duration // backstop rescan (default 5s)
	Uevents UeventSource  // nil: the kernel's netlink socket
	IDs     *PCIIDs       // nil: the system's pci.ids or fabric's copy
	Logger  *slog.Logger
}

// NewSource watches the fabric under sysRoot against expected (may be nil:
// then only AER findings are made).
func NewSource(sysRoot string, expected *boardconfig.Fabric, o SourceOptions) *Source {
	s := &Source{Expected: expected, Logger: o.Logger, subs: map[chan Update]struct{}{}}
	s.Watcher = &Watcher{
		Scanner: &Scanner{Root: sysRoot, IDs: o.IDs},
		Uevents: o.Uevents,
		Poll:    o.Poll,
		Logger:  o.Logger,
		OnScan:  s.onScan,
	}
	return s
}

// Run watches until ctx is done (see Watcher.Run).
func (s *Source) Run(ctx context.Context) error { return s.Watcher.Run(ctx) }

// Topology returns the current topology (nil before the first scan).
func (s *Source) Topology() *Topology {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.topo
}

// Findings returns the current findings (shared: do not modify).
func (s *Source) Findings() []Finding {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.findings
}

// Subscribe returns a channel of updates with a buffer of n and a cancel
// function. A subscriber that falls behind loses updates, never blocks
// the watcher; every update carries the whole topology and findings, so
// the latest one is all a late reader needs.
func (s *Source) Subscribe(n int) (<-chan Update, func()) {
	c := make(chan Update, max(n, 1))
	s.mu.Lock()
	s.subs[c] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return c, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs, c)
			s.mu.Unlock()
			close(c)
		})
	}
}

func (s *Source) onScan(t *Topology, changed bool) {
	window := s.AERWindow
	if window <= 0 {
		window = time.Minute
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// AER baseline: the newest sample at least a window old, else the oldest.
	var base *AERSample
	for _, a := range s.aer {
		if t.Time.Sub(a.Time) >= window {
			base = a
		}
	}
	if base == nil && len(s.aer) > 0 {
		base = s.aer[0]
	}
	findings := Evaluate(s.Expected, t, base, t.Time)
	s.aer = append(s.aer, SampleAER(t))
	// Keep the baseline and everything newer.
	for len(s.aer) > 2 && t.Time.Sub(s.aer[1].Time) >= window {
		s.aer = s.aer[1:]
	}
	old, oldF := s.topo, s.findings
	if changed || old == nil {
		// Unchanged scans keep the published value, so readers that
		// compare pointers (the snapshot) see no change.
		s.topo = t
	}
	s.findings = findings
	if !changed && equalJSON(oldF, findings) && old != nil {
		return
	}
	u := Update{Time: t.Time, Topology: s.topo, Findings: findings, Previous: oldF, Changes: Diff(old, t)}
	for c := range s.subs {
		select {
		case c <- u:
		default:
		}
	}
}
