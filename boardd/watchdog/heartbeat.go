package watchdog

import (
	"sync"
	"time"
)

// Heartbeats tracks the daemon's loops: each registered loop beats after
// every pass; Healthy is true while every loop has beaten within its own
// deadline. Use Heartbeats.Healthy as Config.Healthy.
type Heartbeats struct {
	now   func() time.Time
	mu    sync.Mutex
	loops map[string]*Loop
}

// Loop is one registered loop.
type Loop struct {
	hb       *Heartbeats
	name     string
	deadline time.Duration
	last     time.Time
}

// NewHeartbeats returns an empty tracker; now is the clock (nil: time.Now).
func NewHeartbeats(now func() time.Time) *Heartbeats {
	if now == nil {
		now = time.Now
	}
	return &Heartbeats{now: now, loops: map[string]*Loop{}}
}

// Register adds a loop that must beat at least every deadline. It counts
// as just beaten. Registering a name again replaces the loop.
func (h *Heartbeats) Register(name string, deadline time.Duration) *Loop {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := &Loop{hb: h, name: name, deadline: deadline, last: h.now()}
	h.loops[name] = l
	return l
}

// Unregister removes a loop (one that ended on purpose).
func (h *Heartbeats) Unregister(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.loops, name)
}

// Beat records that the loop made progress.
func (l *Loop) Beat() {
	l.hb.mu.Lock()
	defer l.hb.mu.Unlock()
	l.last = l.hb.now()
}

// Healthy reports whether every loop beat within its deadline.
func (h *Heartbeats) Healthy() bool { return len(h.Stale()) == 0 }

// Stale returns the names of the loops past their deadline.
func (h *Heartbeats) Stale() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	var out []string
	for name, l := range h.loops {
		if now.Sub(l.last) > l.deadline {
			out = append(out, name)
		}
	}
	return out
}
