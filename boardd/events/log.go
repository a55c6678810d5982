package events

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Log is a durable, ordered event log (boardd/eventlog implements it).
type Log interface {
	Reader
	// Append assigns ev the next sequence number (and the current time
	// if ev.Time is zero), persists it and returns it.
	Append(ev Event) (Event, error)
}

// Emitter records events the way boardd requires: appended to the log
// first, then published on the bus. Producers (collector, fabric,
// workloads) share one.
type Emitter struct {
	Log Log
	Bus *Bus
}

// Emit persists ev and then publishes it. If the log fails, the event is
// still published (with Seq 0: a full disk must not silence an alarm)
// and the error is returned.
func (e *Emitter) Emit(ev Event) (Event, error) {
	stored, err := e.Log.Append(ev)
	if err != nil {
		ev.Seq = 0
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		if e.Bus != nil {
			e.Bus.Publish(ev)
		}
		return ev, fmt.Errorf("events: persist %s event %q: %w", ev.Kind, ev.Source, err)
	}
	if e.Bus != nil {
		e.Bus.Publish(stored)
	}
	return stored, nil
}

// MemLog is an in-memory Log for unit tests of code that consumes events.
type MemLog struct {
	mu  sync.Mutex
	evs []Event
	Now func() time.Time
}

// Append implements Log.
func (m *MemLog) Append(ev Event) (Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev.Seq = uint64(len(m.evs)) + 1
	if ev.Time.IsZero() {
		if m.Now != nil {
			ev.Time = m.Now()
		} else {
			ev.Time = time.Now()
		}
	}
	m.evs = append(m.evs, ev)
	return ev, nil
}

// List implements Reader.
func (m *MemLog) List(after uint64, limit int) ([]Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.evs), func(i int) bool { return m.evs[i].Seq > after })
	n := len(m.evs) - i
	if limit > 0 && n > limit {
		n = limit
	}
	return append([]Event(nil), m.evs[i:i+n]...), nil
}
