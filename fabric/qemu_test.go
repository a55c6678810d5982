package fabric_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/fabric/internal/qemuboard"
	"podos.dev/podos/internal/testtool"
)

// These tests boot the emulated board's PCIe hierarchy (from the board
// config) under QEMU with fabric's guest agent as /init, and drive it
// through QMP: the fabric the guest's Source reports must follow.

func bootFabric(t *testing.T, native bool, mutate func(*boardconfig.Config)) (*qemuboard.Board, *qemuboard.Agent, *boardconfig.Config) {
	return bootFabricCmdline(t, native, "", mutate)
}

func bootFabricCmdline(t *testing.T, native bool, cmdline string, mutate func(*boardconfig.Config)) (*qemuboard.Board, *qemuboard.Agent, *boardconfig.Config) {
	t.Helper()
	testtool.Require(t, "qemu-system-x86_64")
	if qemuboard.Kernel() == "" {
		testtool.Missing(t, "no generic kernel in /boot (make deps installs linux-image-amd64)")
	}
	cfg, err := boardconfig.Load(filepath.Join("..", "board-configs", "emulated-ruggedpod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	fj, err := json.Marshal(cfg.Fabric)
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := qemuboard.BuildInitramfs(ctx, dir, map[string][]byte{"fabric.json": fj})
	if err != nil {
		t.Fatal(err)
	}
	b, err := qemuboard.Start(ctx, qemuboard.Options{Dir: dir, Initramfs: initrd, Mode: "watch", PCIe: cfg.Emulation.PCIe, NativeHotplug: native, Cmdline: cmdline})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Kill()
		if t.Failed() {
			t.Logf("console:\n%s", tail(b.Console(), 60))
		}
	})
	return b, qemuboard.NewAgent(b), cfg
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func noFindings(r *qemuboard.Report) bool { return len(r.Findings) == 0 }

func findingsString(r *qemuboard.Report) string {
	var s []string
	for _, f := range r.Findings {
		s = append(s, fmt.Sprintf("%s %s: %s", f.Subject, f.Code, f.Reason))
	}
	return strings.Join(s, "; ")
}

// unplug removes a device by QMP and returns how long the guest's Source
// took to report the finding, measured from device_del on the host.
func unplug(t *testing.T, b *qemuboard.Board, a *qemuboard.Agent, id, subject, code string, timeout time.Duration) time.Duration {
	t.Helper()
	ctx := ctxT(t, timeout)
	start := time.Now()
	if _, err := b.QMP().Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		t.Fatal(err)
	}
	r, err := a.Wait(ctx, code+" on "+subject, func(r *qemuboard.Report) bool { _, ok := r.Finding(subject, code); return ok })
	if err != nil {
		t.Fatalf("%v (last: %s)", err, findingsString(a.Last))
	}
	if err := b.QMP().WaitEvent(ctx, "DEVICE_DELETED", func(d map[string]any) bool { return d["device"] == id }); err != nil {
		t.Fatal(err)
	}
	return r.Arrived.Sub(start)
}

func plug(t *testing.T, b *qemuboard.Board, a *qemuboard.Agent, args map[string]any, ok func(*qemuboard.Report) bool, timeout time.Duration) {
	t.Helper()
	ctx := ctxT(t, timeout)
	if _, err := b.QMP().Execute(ctx, "device_add", args); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ctx, fmt.Sprintf("device_add %v", args), ok); err != nil {
		t.Fatalf("%v (last: %s)", err, findingsString(a.Last))
	}
}

func TestQEMUFabricACPIHotplug(t *testing.T) {
	b, a, _ := bootFabric(t, false, func(c *boardconfig.Config) { c.Fabric.AERLimit = 2 })
	// The topology matches the config: no findings, the switch is there.
	r, err := a.Wait(ctxT(t, 3*time.Minute), "the first report", func(*qemuboard.Report) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Fatalf("fresh board has findings: %s", findingsString(r))
	}
	for _, want := range []string{"0000:00:03.0 root-port", "0000:01:00.0 upstream-port", "0000:02:00.0 downstream-port", "0000:02:02.0 downstream-port", "0000:03:00.0 endpoint 010000", "0000:04:00.0 endpoint 020000"} {
		if !slices.ContainsFunc(r.Devices, func(d string) bool { return strings.HasPrefix(d, want) }) {
			t.Errorf("topology lacks %q: %v", want, r.Devices)
		}
	}

	// Unplug and replug the NIC a few times: the finding comes and goes.
	var lat []time.Duration
	for i := 0; i < 3; i++ {
		id := "nic0"
		if i > 0 {
			id = fmt.Sprintf("nic%d", 10+i)
		}
		lat = append(lat, unplug(t, b, a, id, "sw0/port2", "device-missing", time.Minute))
		if a.Last.Has("0000:04:00.0") {
			t.Errorf("NIC still listed after removal")
		}
		plug(t, b, a, map[string]any{"driver": "e1000e", "id": fmt.Sprintf("nic%d", 11+i), "bus": "dn2"}, func(r *qemuboard.Report) bool { return r.Has("0000:04:00.0") && noFindings(r) }, time.Minute)
	}
	slices.Sort(lat)
	t.Logf("ACPI hotplug: device_del to finding: median %v (all %v)", lat[len(lat)/2], lat)

	// A NIC in the port that should stay empty is flagged, and unflagged.
	plug(t, b, a, map[string]any{"driver": "e1000e", "id": "wrong", "bus": "dn3"}, func(r *qemuboard.Report) bool { _, ok := r.Finding("0000:05:00.0", "extra-device"); return ok }, time.Minute)
	// With port 2 emptied, the NIC in port 3 is the one that belongs in 2: mis-slotted.
	unplug(t, b, a, "nic13", "0000:05:00.0", "mis-slotted", time.Minute)
	if why, _ := a.Last.Finding("sw0/port2", "device-missing"); !strings.Contains(why, "is in port 3 instead") {
		t.Errorf("port 2 finding: %q", why)
	}
	if _, err := b.QMP().Execute(ctxT(t, time.Minute), "device_del", map[string]any{"id": "wrong"}); err != nil {
		t.Fatal(err)
	}
	plug(t, b, a, map[string]any{"driver": "e1000e", "id": "nic14", "bus": "dn2"}, func(r *qemuboard.Report) bool {
		return r.Has("0000:04:00.0") && !r.Has("0000:05:00.0") && noFindings(r)
	}, time.Minute)

	// AER: poisoned TLPs injected at the port below the root port are
	// counted; over the limit (2/min here) they make a finding. The kernel
	// coalesces errors that arrive during recovery, so inject one at a
	// time and wait for each to be counted.
	injectAER(t, b, a, 3)
	r, err = a.Wait(ctxT(t, time.Minute), "the AER finding", func(r *qemuboard.Report) bool { _, ok := r.Finding("0000:01:00.0", "aer-nonfatal"); return ok })
	if err != nil {
		t.Fatalf("%v: AER now %v %v", err, a.Last.AER, a.Last.RootAER)
	}
	if got := r.RootAER["0000:00:03.0"][1]; got < 3 {
		t.Errorf("root port non-fatal total = %d, want >= 3", got)
	}

	// Actions through sysfs in the guest.
	ctx := ctxT(t, 2*time.Minute)
	if err := a.Command(ctx, "retrain 0000:02:01.0"); err != nil {
		t.Errorf("retrain: %v", err)
	}
	if err := a.Command(ctx, "reset 0000:02:01.0"); err != nil {
		t.Errorf("secondary bus reset: %v", err)
	}
	if err := a.Command(ctx, "remove 0000:04:00.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ctx, "removal by sysfs", func(r *qemuboard.Report) bool { return !r.Has("0000:04:00.0") }); err != nil {
		t.Fatal(err)
	}
	if err := a.Command(ctx, "rescan"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ctx, "rescan", func(r *qemuboard.Report) bool { return r.Has("0000:04:00.0") }); err != nil {
		t.Fatal(err)
	}
}

// injectAER injects n POISON_TLP errors at up1, each counted before the next.
func injectAER(t *testing.T, b *qemuboard.Board, a *qemuboard.Agent, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		before := a.Last.AER["0000:01:00.0"][1]
		out, err := b.QMP().HMP(ctxT(t, 30*time.Second), "pcie_aer_inject_error up1 POISON_TLP")
		if err != nil || !strings.HasPrefix(out, "OK") {
			t.Fatalf("inject: %q %v", out, err)
		}
		if _, err := a.Wait(ctxT(t, time.Minute), "the error counted", func(r *qemuboard.Report) bool { return r.AER["0000:01:00.0"][1] > before }); err != nil {
			t.Fatalf("%v: AER %v", err, a.Last.AER)
		}
	}
}

func TestQEMUFabricNativeHotplug(t *testing.T) {
	b, a, _ := bootFabric(t, true, nil)
	r, err := a.Wait(ctxT(t, 3*time.Minute), "the first report", func(*qemuboard.Report) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Fatalf("fresh board has findings: %s", findingsString(r))
	}
	// pciehp names slots by their physical slot number.
	if r.Slots["2"] != "0000:02:01.0 on" || r.Slots["3"] != "0000:02:02.0 off" {
		t.Errorf("slots = %v", r.Slots)
	}
	var lat []time.Duration
	for i := 0; i < 2; i++ {
		id := "nic0"
		if i > 0 {
			id = fmt.Sprintf("nic%d", 10+i)
		}
		// pciehp waits out the attention button's 5 s before removing.
		lat = append(lat, unplug(t, b, a, id, "sw0/port2", "device-missing", 2*time.Minute))
		plug(t, b, a, map[string]any{"driver": "e1000e", "id": fmt.Sprintf("nic%d", 11+i), "bus": "dn2"}, func(r *qemuboard.Report) bool { return r.Has("0000:04:00.0") && noFindings(r) }, 2*time.Minute)
	}
	slices.Sort(lat)
	t.Logf("native pciehp: device_del to finding: median %v (all %v)", lat[len(lat)/2], lat)

	// Slot power through sysfs: off removes the NIC (finding). QEMU treats
	// a powered-off slot as an ejection and deletes the device, so it
	// comes back by device_add, not by power on (which then finds no card).
	ctx := ctxT(t, 2*time.Minute)
	if err := a.Command(ctx, "power 2 off"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ctx, "slot 2 off", func(r *qemuboard.Report) bool {
		_, ok := r.Finding("sw0/port2", "device-missing")
		return ok && r.Slots["2"] == "0000:02:01.0 off"
	}); err != nil {
		t.Fatalf("%v (last %v %s)", err, a.Last.Slots, findingsString(a.Last))
	}
	if err := b.QMP().WaitEvent(ctx, "DEVICE_DELETED", func(d map[string]any) bool { return d["device"] == "nic12" }); err != nil {
		t.Fatal(err)
	}
	plug(t, b, a, map[string]any{"driver": "e1000e", "id": "nic20", "bus": "dn2"}, func(r *qemuboard.Report) bool {
		return r.Has("0000:04:00.0") && noFindings(r) && r.Slots["2"] == "0000:02:01.0 on"
	}, 2*time.Minute)
}

// A root port limited with x-speed/x-width shows its capability and the
// link trained down to the switch's 2.5 GT/s x1; a port expected faster
// than it trained is flagged.
func TestQEMUFabricLinkSpeed(t *testing.T) {
	_, a, _ := bootFabric(t, false, func(c *boardconfig.Config) {
		for i, d := range c.Emulation.PCIe {
			if d.Driver == "pcie-root-port" {
				props := map[string]string{"x-speed": "8", "x-width": "4"}
				for k, v := range d.Props {
					props[k] = v
				}
				c.Emulation.PCIe[i].Props = props
			}
		}
		c.Fabric.Switches[0].Ports[1].Speed = 5 // the NIC's port, trained at 2.5
		c.Fabric.Switches[0].Ports[0].Width = 4 // the disk's port, trained x1
	})
	r, err := a.Wait(ctxT(t, 3*time.Minute), "the first report", func(*qemuboard.Report) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Links["0000:00:03.0"]; got != "2.5x1/8x4" {
		t.Errorf("root port link = %q, want 2.5x1/8x4 (trained down to the switch)", got)
	}
	if why, ok := r.Finding("0000:04:00.0", "link-speed"); !ok || !strings.Contains(why, "expected 5 GT/s") {
		t.Errorf("no link-speed finding on the NIC: %s", findingsString(r))
	}
	if why, ok := r.Finding("0000:03:00.0", "link-width"); !ok || !strings.Contains(why, "expected x4") {
		t.Errorf("no link-width finding on the disk: %s", findingsString(r))
	}
}

// TestQEMUFabricBench measures hot-plug removal to finding (host clock,
// from QMP device_del to the guest's report) with uevents, against the
// same Source polling every 5 s without them; `make bench-fabric` runs it
// with FABRIC_BENCH_OUT set and it writes one row there.
func TestQEMUFabricBench(t *testing.T) {
	out := os.Getenv("FABRIC_BENCH_OUT")
	if out == "" {
		t.Skip("benchmark: set FABRIC_BENCH_OUT (make bench-fabric)")
	}
	const rounds = 7
	measure := func(cmdline string) time.Duration {
		b, a, _ := bootFabricCmdline(t, false, cmdline, nil)
		if _, err := a.Wait(ctxT(t, 3*time.Minute), "the first report", noFindings); err != nil {
			t.Fatal(err)
		}
		var lat []time.Duration
		for i := 0; i < rounds; i++ {
			id := "nic0"
			if i > 0 {
				id = fmt.Sprintf("nic%d", 10+i)
			}
			lat = append(lat, unplug(t, b, a, id, "sw0/port2", "device-missing", time.Minute))
			plug(t, b, a, map[string]any{"driver": "e1000e", "id": fmt.Sprintf("nic%d", 11+i), "bus": "dn2"}, func(r *qemuboard.Report) bool { return r.Has("0000:04:00.0") && noFindings(r) }, time.Minute)
		}
		slices.Sort(lat)
		t.Logf("%q: %v", cmdline, lat)
		b.Kill()
		return lat[len(lat)/2]
	}
	ue := measure("")
	poll := measure("podos.fabric.uevents=off")
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
	verdict := "PASS"
	if ue > time.Second {
		verdict = "FAIL"
	}
	row := fmt.Sprintf("fabric_hotplug_removal_to_finding_ms_median\t%s\tpoll-5s-no-uevents\t%s\t%.2f\t<=1000\t%s\n", ms(ue), ms(poll), float64(ue)/float64(poll), verdict)
	if err := os.WriteFile(out, []byte(row), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log(row)
}
