package fabric

import (
	"testing"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
)

func TestEvents(t *testing.T) {
	topo := scanFixture(t, fixture(t, "sys-emulated"))
	missing := Finding{Subject: "sw0/port2", Code: CodeDeviceMissing, State: health.Critical, Reason: "expected a ethernet device in port 2"}
	aer := Finding{Subject: "0000:01:00.0", Code: CodeAERCorrectable, State: health.Warning, Reason: "11 correctable AER errors"}
	origin := func(s string) string { return "/redfish/v1/x/" + s }

	// The first update is the inventory: no add events, no findings.
	var all []Change
	for _, d := range topo.Devices {
		all = append(all, Change{"added", d.BDF})
	}
	if evs := Events(Update{Topology: topo, Changes: all}, origin); len(evs) != 0 {
		t.Errorf("inventory gave %d events", len(evs))
	}

	evs := Events(Update{Topology: topo, Findings: []Finding{aer, missing}, Previous: []Finding{{Subject: aer.Subject, Code: aer.Code, State: health.Critical}},
		Changes: []Change{{"removed", "0000:04:00.0"}, {"changed", "0000:02:01.0"}}}, origin)
	want := []struct {
		source, msgID string
		from, to      health.State
	}{
		{"0000:04:00.0", MsgResourceRemoved, health.OK, health.OK},
		{"0000:01:00.0", MsgStatusChangedWarning, health.Critical, health.Warning},
		{"sw0/port2", MsgStatusChangedCritical, health.OK, health.Critical},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %d events: %+v", len(evs), evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.Kind != events.KindFabric || e.Source != w.source || e.MessageID != w.msgID || e.From != w.from || e.To != w.to || e.Origin != origin(w.source) {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
	// Cleared.
	evs = Events(Update{Topology: topo, Previous: []Finding{missing}}, nil)
	if len(evs) != 1 || evs[0].To != health.OK || evs[0].From != health.Critical || evs[0].MessageID != MsgStatusChangedOK {
		t.Errorf("clear events = %+v", evs)
	}
}

func TestRollup(t *testing.T) {
	if st, why := Rollup(nil); st != health.OK || why != "" {
		t.Errorf("Rollup(nil) = %v %q", st, why)
	}
	st, why := Rollup([]Finding{{State: health.Warning, Reason: "w"}, {State: health.Critical, Reason: "c"}, {State: health.Warning, Reason: "w2"}})
	if st != health.Critical || why != "c (and 2 more)" {
		t.Errorf("Rollup = %v %q", st, why)
	}
}
