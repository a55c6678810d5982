package e2e

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/dial"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/selsink"
	"podos.dev/podos/boardd/workloads"
)

var beatRE = regexp.MustCompile(`(?m) heartbeat (\d+) `)

// lastBeat is the number of the workload's last heartbeat line (-1: none
// yet), read through the /podos/v1 logs endpoint.
func (b *board) lastBeat(t *testing.T, name string) int {
	t.Helper()
	code, body := b.api(t, "GET", "/podos/v1/workloads/"+name+"/logs?tail=0", adminUser, adminPW)
	if code != http.StatusOK {
		t.Fatalf("logs of %s: %d %s", name, code, body)
	}
	last := -1
	for _, m := range beatRE.FindAllSubmatch(body, -1) {
		if n, err := strconv.Atoi(string(m[1])); err == nil {
			last = max(last, n)
		}
	}
	return last
}

// waitBeats waits until the workload has beaten n more times than from.
func (b *board) waitBeats(t *testing.T, name string, from, n int) int {
	t.Helper()
	var last int
	waitFor(t, 60*time.Second, name+" beating", func() bool {
		last = b.lastBeat(t, name)
		return last >= from+n
	})
	return last
}

// waitSEL reads the BMC's SEL (through a connection of its own) until an
// entry satisfies ok.
func (b *board) waitSEL(t *testing.T, ok func(bmc.SELEntry) bool) bmc.SELEntry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := dial.Open(ctx, b.sim.URL(), dial.Options{Timeout: 3 * time.Second, Retries: 3})
	if err != nil {
		t.Fatalf("BMC: %v", err)
	}
	defer c.Close()
	r, isReader := c.(bmc.SELReader)
	if !isReader {
		t.Fatalf("%T reads no SEL", c)
	}
	var found bmc.SELEntry
	waitFor(t, 60*time.Second, "the SEL record", func() bool {
		entries, err := r.SEL(ctx)
		if err != nil {
			t.Logf("SEL: %v", err)
			return false
		}
		for _, e := range entries {
			if ok(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

func isWorkloadAction(name, action string) func(events.Event) bool {
	return func(ev events.Event) bool {
		return ev.Kind == events.KindWorkload && ev.Source == name && ev.Data["action"] == action
	}
}

// TestPSUFaultShedsWorkloads: a PSU failure raised at the BMC (ipmi_sim's
// PSU_STATUS failure offset) makes the board policy freeze the sheddable
// workload within seconds, leaves the critical one running, records the
// freeze in the durable event log (and Redfish's event log), and resumes
// the workload once the board has been healthy for the policy's hold, not
// before.
func TestPSUFaultShedsWorkloads(t *testing.T) {
	const hold = 3 * time.Second
	withWorkloads := demoWorkloads(t)
	b := startBoard(t, boardOptions{workloads: true, config: func(cfg *boardconfig.Config) {
		withWorkloads(cfg)
		cfg.Policy.Hold.Duration = hold
	}})
	b.waitRunning(t)
	if p := b.workload(t, "demo").Priority; p != "sheddable" {
		t.Fatalf("demo priority %q", p)
	}
	if p := b.workload(t, "sentinel").Priority; p != "critical" {
		t.Fatalf("sentinel priority %q", p)
	}
	b.waitBeats(t, "demo", -1, 2)
	b.waitBeats(t, "sentinel", -1, 2)
	seq := b.lastSeq(t)

	// PSU_STATUS (sensor-specific, type 0x08): presence (bit 0) + failure (bit 1).
	b.setDiscrete(t, "PSU_STATUS", 0x0003)
	crit := b.waitEvent(t, seq, "PSU_STATUS Critical in the event log", func(ev events.Event) bool {
		return ev.Kind == events.KindSensor && ev.Data["name"] == "PSU_STATUS" && ev.To == health.Critical
	})
	waitFor(t, 60*time.Second, "demo paused", func() bool { return b.workload(t, "demo").State == workloads.StatePaused })
	frozen := b.waitEvent(t, seq, "demo's freeze in the event log", isWorkloadAction("demo", "protect-frozen"))
	delay := frozen.Time.Sub(crit.Time)
	t.Logf("PSU_STATUS Critical (event %d, %s) -> demo frozen (event %d): %v", crit.Seq, crit.Time.Format(time.StampMilli), frozen.Seq, delay.Round(time.Millisecond))
	if delay < 0 || delay > 10*time.Second {
		t.Errorf("demo frozen %v after PSU_STATUS went Critical, want within a few seconds", delay)
	}
	if frozen.Seq <= crit.Seq || frozen.Data["priority"] != "sheddable" || frozen.Message == "" {
		t.Errorf("freeze event %+v", frozen)
	}
	if s := b.workload(t, "sentinel"); s.State != workloads.StateRunning || s.Protection != "" {
		t.Errorf("critical workload touched: %+v", s)
	}
	// The critical workload keeps beating while the sheddable one does not.
	// (Let lines printed just before the freeze drain first.)
	sBeat := b.waitBeats(t, "sentinel", b.lastBeat(t, "sentinel"), 2)
	demoBeat := b.lastBeat(t, "demo")
	sBeat = b.waitBeats(t, "sentinel", sBeat, 5)
	if now := b.lastBeat(t, "demo"); now != demoBeat {
		t.Errorf("frozen demo beat on: %d -> %d while sentinel reached %d", demoBeat, now, sBeat)
	}
	for _, ev := range b.events(t, seq) {
		if ev.Kind == events.KindWorkload && ev.Source == "sentinel" {
			t.Errorf("event about the critical workload: %+v", ev)
		}
	}
	// The freeze is in Redfish's event log too (entry id = event seq).
	entry := b.getJSON(t, "/redfish/v1/Managers/boardd/LogServices/EventLog/Entries/"+strconv.FormatUint(frozen.Seq, 10))
	if entry["Description"] != frozen.Message || entry["MessageId"] != frozen.MessageID {
		t.Errorf("Redfish EventLog entry %d: %v, want %s with description %q", frozen.Seq, entry, frozen.MessageID, frozen.Message)
	}
	// The SEL sink recorded the PSU fault in the BMC's own SEL.
	psu := b.simSensor(t, "PSU_STATUS")
	rec := b.waitSEL(t, func(e bmc.SELEntry) bool {
		return e.EventType == selsink.EventType && e.SensorNumber == psu.Number && e.EventData[0] == 2
	})
	t.Logf("BMC SEL record %d: %s", rec.RecordID, rec.Message)

	// Healthy again: demo stays frozen for the hold, then resumes.
	seq = b.lastSeq(t)
	b.setDiscrete(t, "PSU_STATUS", 0x0001)
	ok := b.waitEvent(t, seq, "Power OK in the event log", func(ev events.Event) bool {
		return ev.Kind == events.KindSubsystem && ev.Source == string(health.Power) && ev.To == health.OK
	})
	waitFor(t, 60*time.Second, "demo running again", func() bool {
		if b.workload(t, "demo").State != workloads.StateRunning {
			return false
		}
		// Seen running: it resumed no later than now (the same 250 ms
		// allowance as below).
		if early := time.Since(ok.Time); early < hold-250*time.Millisecond {
			t.Errorf("demo seen running %v after Power went OK, before the %v hold", early, hold)
		}
		return true
	})
	resumed := b.waitEvent(t, seq, "demo's resume in the event log", isWorkloadAction("demo", "protect-none"))
	after := resumed.Time.Sub(ok.Time)
	t.Logf("Power OK (event %d) -> demo resumed (event %d): %v (hold %v)", ok.Seq, resumed.Seq, after.Round(time.Millisecond), hold)
	// The protector starts the hold when it sees the healthy snapshot,
	// which the collector stores just before it emits the OK event.
	if after < hold-250*time.Millisecond {
		t.Errorf("demo resumed %v after Power went OK, before the %v hold", after, hold)
	}
	if after > hold+15*time.Second {
		t.Errorf("demo resumed %v after Power went OK, long after the %v hold", after, hold)
	}
	b.waitBeats(t, "demo", demoBeat, 2)
}
