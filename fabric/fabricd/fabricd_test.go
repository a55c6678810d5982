package fabricd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	boardconfig "podos.dev/podos/board-configs"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/redfish"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/fabric"
	"podos.dev/podos/fabric/internal/sysfsfix"
)

type chanUevents chan fabric.Uevent

func (c chanUevents) Read(ctx context.Context) (fabric.Uevent, error) {
	select {
	case ev := <-c:
		return ev, nil
	case <-ctx.Done():
		return fabric.Uevent{}, ctx.Err()
	}
}
func (c chanUevents) Close() error { return nil }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWiring(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "sys-emulated.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := sysfsfix.Extract(b, root); err != nil {
		t.Fatal(err)
	}
	cfg := &boardconfig.Config{Board: boardconfig.Board{ID: "blade1"}, Fabric: &boardconfig.Fabric{ID: "pcie", Switches: []boardconfig.Switch{{
		Name: "sw0", RootPort: "0000:00:03.0",
		Ports: []boardconfig.SwitchPort{{Port: 1, Expect: "storage"}, {Port: 2, Expect: "ethernet"}, {Port: 3, Expect: "empty"}},
	}}}}
	store := snapshot.NewStore()
	log := &events.MemLog{}
	bus := events.NewBus()
	sub := bus.Subscribe(64)
	ue := make(chanUevents, 4)
	f := New(root, cfg, store, &events.Emitter{Log: log, Bus: bus}, fabric.SourceOptions{Poll: time.Hour, Uevents: ue})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	waitFor(t, "the fabric in the snapshot", func() bool { return store.Load().Fabric != nil })
	s := store.Load()
	if r := s.Subsystems[health.Fabric]; r.State != health.OK {
		t.Errorf("fabric rollup %+v", r)
	}
	res := f.Resources(s)
	if res["/redfish/v1/Fabrics/pcie/Switches/sw0/Ports/DP2"] == nil || res["/redfish/v1/Chassis/blade1/PCIeDevices/0000-04-00"] == nil {
		t.Fatalf("resources lack the NIC's port or device: %d resources", len(res))
	}

	// A swap by someone else (the collector) that drops Fabric is repaired.
	n := *store.Load()
	n.Fabric = nil
	n.Seq++
	store.Swap(&n)
	waitFor(t, "the fabric republished", func() bool { return store.Load().Fabric != nil })

	// Unplug the NIC: a Critical fabric event, the snapshot follows.
	nic, _ := filepath.EvalSymlinks(filepath.Join(root, "bus/pci/devices/0000:04:00.0"))
	os.RemoveAll(nic)
	os.Remove(filepath.Join(root, "bus/pci/devices/0000:04:00.0"))
	ue <- fabric.Uevent{Action: "remove", Subsystem: "pci"}
	var crit, removed bool
	deadline := time.After(30 * time.Second)
	for !crit || !removed {
		select {
		case ev := <-sub.C:
			if ev.Kind != events.KindFabric {
				continue
			}
			if ev.Source == "sw0/port2" && ev.To == health.Critical && ev.Origin == "/redfish/v1/Fabrics/pcie" {
				crit = true
			}
			if ev.Source == "0000:04:00.0" && ev.MessageID == fabric.MsgResourceRemoved {
				removed = true
			}
		case <-deadline:
			t.Fatalf("events: critical %v removed %v", crit, removed)
		}
	}
	waitFor(t, "the snapshot without the NIC", func() bool {
		s := store.Load()
		return s.Fabric.Device("0000:04:00.0") == nil && s.Subsystems[health.Fabric].State == health.Critical
	})
	// The collector rebuilds roll-ups without Fabric: it comes back.
	n = *store.Load()
	n.Subsystems = map[health.Subsystem]snapshot.Rollup{health.Power: {State: health.OK}}
	n.Seq++
	store.Swap(&n)
	waitFor(t, "the fabric roll-up republished", func() bool {
		s := store.Load()
		return s.Subsystems[health.Fabric].State == health.Critical && s.Subsystems[health.Power].State == health.OK
	})
	if evs, _ := log.List(0, 100); len(evs) < 2 {
		t.Errorf("%d events persisted", len(evs))
	}

	// Port.Reset: the disk's port does a bus reset; the NIC's is refused
	// as a bad request (its child is gone: nothing to reset... but the port
	// is there, so it is an internal error) and a bad ResetType is 400.
	acts := f.Actions()
	if len(acts) != 3 {
		t.Fatalf("%d actions", len(acts))
	}
	dp1 := acts["/redfish/v1/Fabrics/pcie/Switches/sw0/Ports/DP1/Actions/Port.Reset"]
	if dp1.Priv != "ConfigureComponents" {
		t.Errorf("privilege %q", dp1.Priv)
	}
	if err := dp1.Do(ctx, map[string]any{"ResetType": "ForceRestart"}); err != nil {
		t.Fatal(err)
	}
	disk, _ := filepath.EvalSymlinks(filepath.Join(root, "bus/pci/devices/0000:03:00.0"))
	if got, _ := os.ReadFile(filepath.Join(disk, "reset")); string(got) != "1" {
		t.Errorf("bus reset wrote %q", got)
	}
	if err := dp1.Do(ctx, map[string]any{"ResetType": "Nmi"}); !errors.Is(err, redfish.ErrBadRequest) {
		t.Errorf("bad ResetType: %v", err)
	}
	dp2 := acts["/redfish/v1/Fabrics/pcie/Switches/sw0/Ports/DP2/Actions/Port.Reset"]
	if err := dp2.Do(ctx, nil); err == nil || errors.Is(err, redfish.ErrBadRequest) {
		t.Errorf("reset of an empty port: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMetricsCollector(t *testing.T) {
	store := snapshot.NewStore()
	c := MetricsCollector(store)
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("empty snapshot gave %d series", n)
	}
	active := true
	n := *store.Load()
	n.Fabric = &fabric.Topology{Devices: []fabric.Device{
		{BDF: "0000:00:03.0", Type: fabric.TypeRootPort, Link: &fabric.Link{Speed: 8, Width: 4, MaxSpeed: 8, MaxWidth: 4, Active: &active}},
	}}
	store.Swap(&n)
	if got := testutil.CollectAndCount(c, "boardd_pcie_link_speed_gts", "boardd_pcie_device_present"); got != 2 {
		t.Errorf("%d series, want speed and present", got)
	}
}
