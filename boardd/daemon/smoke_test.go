package daemon

import (
	"testing"
	"time"

	"podos.dev/podos/boardd/snapshot"
)

func TestSmoke(t *testing.T) {
	cfg := emulatedConfig(t)
	sim := startSim(t, cfg)
	r := startDaemon(t, Options{BMCURL: sim.URL(), Config: cfg, Interval: 500 * time.Millisecond})
	s := waitSnap(t, r.d.Store(), 60*time.Second, "bmc up", func(s *snapshot.Snapshot) bool { return s.BMC.Up && len(s.Sensors) > 0 })
	for _, x := range s.Sensors {
		t.Logf("%s %s %v %s %s %q dur", x.Def.ID, x.Def.Name, x.Reading.Value, x.Def.Unit, x.State, x.Reason)
	}
	t.Logf("collect %v health %+v", s.CollectDuration, s.Health)
	t.Logf("events %+v", r.drain())
}
