// Package snapshot holds boardd's view of the board: an immutable value
// built by the collectors and swapped in atomically. Every API (Redfish,
// /podos/v1, /metrics) reads the current snapshot; none waits on hardware.
package snapshot

import (
	"sync"
	"sync/atomic"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/fabric"
)

// Sensor is one sensor as boardd currently judges it.
type Sensor struct {
	Def     bmc.SensorDef `json:"def"`
	Reading bmc.Reading   `json:"reading"`
	// Thresholds in force: the BMC's, completed or overridden by the
	// board config.
	Thresholds bmc.Thresholds   `json:"thresholds"`
	Subsystem  health.Subsystem `json:"subsystem"`
	State      health.State     `json:"state"`
	Reason     string           `json:"reason,omitempty"`
	Since      time.Time        `json:"since"` // when State was entered
}

// Rollup is the health of a subsystem or of the whole board.
type Rollup struct {
	State  health.State `json:"state"`
	Reason string       `json:"reason,omitempty"`
	Since  time.Time    `json:"since"`
}

// BMC is the state of the connection to the BMC.
type BMC struct {
	Up        bool      `json:"up"`
	Transport string    `json:"transport"`
	Err       string    `json:"err,omitempty"`
	LastOK    time.Time `json:"last_ok"`
}

// Snapshot is the whole board at one instant. Treat it as read-only: it
// is shared by every reader.
type Snapshot struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Board struct {
		ID    string `json:"id"`
		Model string `json:"model"`
		Slot  int    `json:"slot"`
	} `json:"board"`
	BMC        BMC                         `json:"bmc"`
	Sensors    []Sensor                    `json:"sensors"` // sorted by Def.ID
	Subsystems map[health.Subsystem]Rollup `json:"subsystems"`
	Health     Rollup                      `json:"health"`
	// Fabric is the PCIe fabric as fabric.Source last read it (nil when
	// the board has no fabric watcher).
	Fabric *fabric.Topology `json:"fabric,omitempty"`
	// CollectDuration is how long the last BMC poll took.
	CollectDuration time.Duration `json:"collect_duration"`
}

// Sensor returns the sensor with the given id.
func (s *Snapshot) Sensor(id string) (Sensor, bool) {
	for _, x := range s.Sensors {
		if x.Def.ID == id {
			return x, true
		}
	}
	return Sensor{}, false
}

// Store holds the current snapshot and wakes readers waiting for a newer one.
type Store struct {
	cur atomic.Pointer[Snapshot]

	mu      sync.Mutex
	changed chan struct{}

	// wmu serialises writers (the collector, the fabric source) so that
	// none builds on a snapshot another is replacing at the same moment.
	wmu sync.Mutex
}

// NewStore returns a store holding an empty snapshot.
func NewStore() *Store {
	s := &Store{changed: make(chan struct{})}
	s.cur.Store(&Snapshot{Subsystems: map[health.Subsystem]Rollup{}})
	return s
}

// Load returns the current snapshot. It never blocks on hardware.
func (s *Store) Load() *Snapshot { return s.cur.Load() }

// Swap publishes a new snapshot and wakes everyone waiting in Changed.
func (s *Store) Swap(n *Snapshot) {
	s.cur.Store(n)
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Update builds a new snapshot from the current one and publishes it,
// atomically with respect to other Update calls: concurrent sources each
// see the other's latest fields. build must not block; it returns nil to
// publish nothing.
func (s *Store) Update(build func(cur *Snapshot) *Snapshot) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if n := build(s.cur.Load()); n != nil {
		s.Swap(n)
	}
}

// Changed returns a channel closed at the next Swap.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}
