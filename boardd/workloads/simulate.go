package workloads

import (
	"fmt"
	"time"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
)

// SubsystemEvent is the health event the policy publishes when a
// subsystem roll-up changes: tests and the lead's end-to-end use it to
// drive the Protector through the bus.
func SubsystemEvent(sub health.Subsystem, from, to health.State) events.Event {
	return events.Event{
		Time: time.Now().UTC(), Kind: events.KindSubsystem, Source: string(sub),
		Severity: to, From: from, To: to,
		Message:   fmt.Sprintf("%s changed from %s to %s (simulated)", sub, from, to),
		MessageID: "ResourceEvent.1.4.ResourceStatusChanged" + to.String(),
	}
}

// SimulateSubsystem swaps into store a copy of its snapshot in which the
// subsystem's roll-up (and the board's, if worse) is state: the health
// input a Protector watching the store reacts to.
func SimulateSubsystem(store *snapshot.Store, sub health.Subsystem, state health.State) {
	old := store.Load()
	n := *old
	n.Seq = old.Seq + 1
	n.Time = time.Now().UTC()
	n.Subsystems = make(map[health.Subsystem]snapshot.Rollup, len(old.Subsystems)+1)
	worst := health.OK
	for k, v := range old.Subsystems {
		n.Subsystems[k] = v
	}
	n.Subsystems[sub] = snapshot.Rollup{State: state, Reason: "simulated", Since: n.Time}
	for _, v := range n.Subsystems {
		worst = health.Worse(worst, v.State)
	}
	n.Health = snapshot.Rollup{State: worst, Reason: "simulated", Since: n.Time}
	store.Swap(&n)
}
