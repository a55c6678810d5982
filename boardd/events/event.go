// Package events defines boardd's typed events, the durable event log
// they are persisted to before anything acts on them, and the bus that
// fans them out to sinks (BMC SEL, Redfish SSE and subscriptions,
// metrics, the workload shedder, fabric actions). A slow sink never
// blocks the producer.
package events

import (
	"time"

	"podos.dev/podos/boardd/health"
)

// Kind is what an event is about.
type Kind string

// Event kinds.
const (
	KindSensor    Kind = "sensor"    // a sensor changed state
	KindSubsystem Kind = "subsystem" // a subsystem roll-up changed state
	KindBoard     Kind = "board"     // the board roll-up changed state
	KindBMC       Kind = "bmc"       // BMC connection lost or regained
	KindFabric    Kind = "fabric"    // PCIe fabric change or health
	KindWorkload  Kind = "workload"  // a workload was started, stopped, frozen, throttled...
	KindAction    Kind = "action"    // an operator action (fabric reset, ...)
	KindService   Kind = "service"   // boardd itself (started, config loaded, ...)
)

// Event is one thing that happened, in the order it happened.
type Event struct {
	Seq      uint64       `json:"seq"` // assigned by the log, strictly increasing
	Time     time.Time    `json:"time"`
	Kind     Kind         `json:"kind"`
	Source   string       `json:"source"` // sensor id, subsystem, BDF, workload name...
	Severity health.State `json:"severity"`
	From     health.State `json:"from"`
	To       health.State `json:"to"`
	Message  string       `json:"message"` // one human sentence saying what and why
	// MessageID is the DMTF registry message this event renders as in
	// Redfish, e.g. "ResourceEvent.1.4.ResourceStatusChangedCritical".
	MessageID   string   `json:"message_id"`
	MessageArgs []string `json:"message_args,omitempty"`
	// Origin is the Redfish URI of the resource the event is about.
	Origin string `json:"origin,omitempty"`
	// Data carries kind-specific fields (reading, threshold, action).
	Data map[string]string `json:"data,omitempty"`
}

// DMTF ResourceEvent registry messages boardd's events render as.
const (
	MsgStatusChangedOK       = "ResourceEvent.1.4.ResourceStatusChangedOK"
	MsgStatusChangedWarning  = "ResourceEvent.1.4.ResourceStatusChangedWarning"
	MsgStatusChangedCritical = "ResourceEvent.1.4.ResourceStatusChangedCritical"
	MsgErrorsDetected        = "ResourceEvent.1.4.ResourceErrorsDetected"
	MsgErrorsCorrected       = "ResourceEvent.1.4.ResourceErrorsCorrected"
	MsgResourceCreated       = "ResourceEvent.1.4.ResourceCreated"
	MsgResourceRemoved       = "ResourceEvent.1.4.ResourceRemoved"
)

// StatusMessageID is the ResourceEvent message of a change to state s. A
// resource that became Unavailable reports ResourceErrorsDetected.
func StatusMessageID(s health.State) string {
	switch s {
	case health.OK:
		return MsgStatusChangedOK
	case health.Warning:
		return MsgStatusChangedWarning
	case health.Critical:
		return MsgStatusChangedCritical
	}
	return MsgErrorsDetected
}
