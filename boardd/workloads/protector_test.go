package workloads_test

import (
	"context"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/fakeruntime"
)

// The Protector's inputs: snapshot swaps and sensor events by id, with
// role rules resolved through the board config's sensor names.
func TestProtectorInputs(t *testing.T) {
	rt := fakeruntime.New()
	log := &events.MemLog{}
	m, _ := run(t, workloads.Options{Runtime: rt, StateDir: t.TempDir(), Events: log})
	ctx := context.Background()
	m.Apply(ctx, workloads.Spec{Name: "batch", Image: "demo", Priority: "sheddable"})
	m.Apply(ctx, workloads.Spec{Name: "web", Image: "demo", Priority: "normal", CPU: 1})
	waitFor(t, "running", func() bool {
		return rt.State("batch") == workloads.TaskRunning && rt.State("web") == workloads.TaskRunning
	})

	store := snapshot.NewStore()
	snap := &snapshot.Snapshot{Subsystems: map[health.Subsystem]snapshot.Rollup{}, Sensors: []snapshot.Sensor{
		{Def: bmc.SensorDef{ID: "20-0-20", Name: "LEAK"}, State: health.OK},
		{Def: bmc.SensorDef{ID: "20-0-12", Name: "CPU_TEMP"}, State: health.OK},
	}}
	store.Swap(snap)
	bus := events.NewBus()
	p := workloads.NewProtector(workloads.ProtectorConfig{
		Manager: m, Store: store, Bus: bus,
		Roles: map[string]boardconfig.Role{"LEAK": boardconfig.RoleLeak, "CPU_TEMP": boardconfig.RoleTempCPU},
		Policy: boardconfig.Policy{Hold: boardconfig.Duration{Duration: 100 * time.Millisecond}, Rules: []boardconfig.Rule{
			{Name: "leak", When: boardconfig.When{Role: boardconfig.RoleLeak, State: "Critical"}, Action: "shed"},
			{Name: "thermal", When: boardconfig.When{Subsystem: "Thermal", State: "Warning"}, Action: "throttle", ThrottlePercent: 50},
		}},
	})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.Run(pctx) }()
	defer func() { cancel(); <-done }()

	// A sensor event names the sensor by id; its role comes from its name.
	bus.Publish(events.Event{Kind: events.KindSensor, Source: "20-0-20", From: health.OK, To: health.Critical})
	waitFor(t, "batch frozen by the leak rule", func() bool { return rt.State("batch") == workloads.TaskPaused })
	if i, _ := m.Get("batch"); i.ShedReason != "rule leak: leak sensor LEAK is Critical" {
		t.Errorf("reason %q", i.ShedReason)
	}
	// A snapshot swap (Thermal Warning, leak still Critical in it).
	workloads.SimulateSubsystem(store, health.Thermal, health.Warning)
	n := *store.Load()
	n.Sensors = []snapshot.Sensor{{Def: bmc.SensorDef{ID: "20-0-20", Name: "LEAK"}, State: health.Critical}}
	store.Swap(&n)
	waitFor(t, "web throttled", func() bool { return rt.CPU("web") == 0.5 })
	if rt.State("batch") != workloads.TaskPaused {
		t.Error("batch thawed while still shed")
	}
	// Everything healthy: restored after the hold, normal first.
	healthy := &snapshot.Snapshot{Subsystems: map[health.Subsystem]snapshot.Rollup{health.Thermal: {State: health.OK}},
		Sensors: []snapshot.Sensor{{Def: bmc.SensorDef{ID: "20-0-20", Name: "LEAK"}, State: health.OK}}}
	store.Swap(healthy)
	waitFor(t, "restored", func() bool { return rt.State("batch") == workloads.TaskRunning && rt.CPU("web") == 1 })
	evs, _ := log.List(0, 0)
	var order []string
	for _, e := range evs {
		if a := e.Data["action"]; a == "protect-none" {
			order = append(order, e.Source)
		}
	}
	if len(order) != 2 || order[0] != "web" || order[1] != "batch" {
		t.Errorf("restore order %v, want web then batch", order)
	}
}
