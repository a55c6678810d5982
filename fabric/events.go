package fabric

import (
	"fmt"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
)

// DMTF ResourceEvent messages the fabric's events render as (the events
// package owns them).
const (
	MsgStatusChangedOK       = events.MsgStatusChangedOK
	MsgStatusChangedWarning  = events.MsgStatusChangedWarning
	MsgStatusChangedCritical = events.MsgStatusChangedCritical
	MsgResourceCreated       = events.MsgResourceCreated
	MsgResourceRemoved       = events.MsgResourceRemoved
)

// statusMessage: fabric findings are Warning or Critical, and OK once
// cleared.
func statusMessage(s health.State) string { return events.StatusMessageID(s) }

// Events turns an Update into boardd events (Kind fabric), in order:
// functions added and removed, then findings raised, changed in state,
// and cleared. origin gives the Redfish URI an event is about (may be
// nil). It is pure.
func Events(u Update, origin func(subject string) string) []events.Event {
	if origin == nil {
		origin = func(string) string { return "" }
	}
	var out []events.Event
	first := isFirst(u)
	for _, c := range u.Changes {
		if c.Kind == "changed" || first {
			continue
		}
		d := u.Topology.Device(c.BDF)
		what := "PCIe function " + c.BDF
		if d != nil && d.Name != "" {
			what += " (" + d.Name + ")"
		}
		ev := events.Event{Time: u.Time, Kind: events.KindFabric, Source: c.BDF, Severity: health.OK,
			From: health.OK, To: health.OK, Origin: origin(c.BDF), Data: map[string]string{"change": c.Kind}}
		if c.Kind == "added" {
			ev.Message, ev.MessageID = what+" appeared.", MsgResourceCreated
		} else {
			ev.Message, ev.MessageID = what+" disappeared.", MsgResourceRemoved
		}
		out = append(out, ev)
	}
	key := func(f Finding) string { return f.Subject + "\x00" + f.Code }
	prev := map[string]Finding{}
	for _, f := range u.Previous {
		prev[key(f)] = f
	}
	cur := map[string]bool{}
	for _, f := range u.Findings {
		cur[key(f)] = true
		p, had := prev[key(f)]
		if had && p.State == f.State {
			continue
		}
		from := health.OK
		if had {
			from = p.State
		}
		out = append(out, events.Event{Time: u.Time, Kind: events.KindFabric, Source: f.Subject,
			Severity: f.State, From: from, To: f.State, Message: f.Reason + ".",
			MessageID: statusMessage(f.State), MessageArgs: []string{f.Subject, f.State.String()},
			Origin: origin(f.Subject), Data: map[string]string{"code": f.Code}})
	}
	for _, f := range u.Previous {
		if cur[key(f)] {
			continue
		}
		out = append(out, events.Event{Time: u.Time, Kind: events.KindFabric, Source: f.Subject,
			Severity: health.OK, From: f.State, To: health.OK, Message: fmt.Sprintf("Cleared: %s.", f.Reason),
			MessageID: MsgStatusChangedOK, MessageArgs: []string{f.Subject, health.OK.String()},
			Origin: origin(f.Subject), Data: map[string]string{"code": f.Code}})
	}
	return out
}

// isFirst reports whether u is a Source's first update (everything added):
// the boot-time inventory is not a stream of hot-plug events.
func isFirst(u Update) bool {
	for _, c := range u.Changes {
		if c.Kind != "added" {
			return false
		}
	}
	return u.Topology != nil && len(u.Changes) == len(u.Topology.Devices)
}

// Rollup is the fabric's health: the worst finding, and its reason.
func Rollup(fs []Finding) (health.State, string) {
	st, why := health.OK, ""
	for _, f := range fs {
		if health.Worse(st, f.State) != st {
			st, why = f.State, f.Reason
		}
	}
	if n := len(fs); n > 1 && st != health.OK {
		why = fmt.Sprintf("%s (and %d more)", why, n-1)
	}
	return st, why
}
