package fabric

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chanUevents is a UeventSource fed by the test.
type chanUevents chan Uevent

func (c chanUevents) Read(ctx context.Context) (Uevent, error) {
	select {
	case ev := <-c:
		return ev, nil
	case <-ctx.Done():
		return Uevent{}, ctx.Err()
	}
}
func (c chanUevents) Close() error { return nil }

// waitUpdate reads updates until ok accepts one.
func waitUpdate(t *testing.T, ch <-chan Update, what string, ok func(Update) bool) Update {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case u := <-ch:
			if ok(u) {
				return u
			}
		case <-deadline:
			t.Fatalf("no update with %s", what)
		}
	}
}

func hasFinding(fs []Finding, subject, code string) bool {
	for _, f := range fs {
		if f.Subject == subject && f.Code == code {
			return true
		}
	}
	return false
}

func TestSourceHotplugByUevent(t *testing.T) {
	root := fixture(t, "sys-emulated")
	ev := make(chanUevents, 4)
	// Poll never fires in this test: only the uevent can make the rescan.
	s := NewSource(root, emulatedFabric(), SourceOptions{Poll: time.Hour, Uevents: ev, IDs: shippedIDs(t)})
	updates, cancelSub := s.Subscribe(8)
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	first := waitUpdate(t, updates, "the first scan", func(u Update) bool { return u.Topology != nil })
	if len(first.Findings) != 0 {
		t.Fatalf("healthy board has findings: %v", first.Findings)
	}
	if len(first.Changes) == 0 {
		t.Error("first update lists no added devices")
	}

	// Unplug the e1000e as the kernel would: its directory and link go.
	dir := devPath(t, root, "0000:04:00.0")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "bus/pci/devices/0000:04:00.0")); err != nil {
		t.Fatal(err)
	}
	ev <- Uevent{Action: "remove", Subsystem: "pci", DevPath: "/devices/pci0000:00/0000:00:03.0/0000:01:00.0/0000:02:01.0/0000:04:00.0"}
	u := waitUpdate(t, updates, "the removal", func(u Update) bool { return u.Topology.Device("0000:04:00.0") == nil })
	if !hasFinding(u.Findings, "sw0/port2", CodeDeviceMissing) {
		t.Errorf("findings after removal: %v", u.Findings)
	}
	if len(u.Changes) != 1 || u.Changes[0] != (Change{"removed", "0000:04:00.0"}) {
		t.Errorf("changes = %v", u.Changes)
	}
	if len(u.Previous) != 0 {
		t.Errorf("previous findings = %v", u.Previous)
	}
	if got := s.Findings(); !hasFinding(got, "sw0/port2", CodeDeviceMissing) {
		t.Errorf("Findings() = %v", got)
	}
	if s.Topology().Device("0000:04:00.0") != nil {
		t.Error("Topology() still has the device")
	}
	// Uevents of other subsystems do not rescan (nothing to report, and
	// the next pci one still works).
	ev <- Uevent{Action: "add", Subsystem: "net"}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSourceAERByPoll(t *testing.T) {
	root := fixture(t, "sys-emulated")
	s := NewSource(root, emulatedFabric(), SourceOptions{Poll: 20 * time.Millisecond, Uevents: make(chanUevents), IDs: shippedIDs(t)})
	updates, cancelSub := s.Subscribe(64)
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	waitUpdate(t, updates, "the first scan", func(u Update) bool { return u.Topology != nil })

	// Eleven poisoned TLPs on the upstream port (over the limit of 10/min).
	p := filepath.Join(devPath(t, root, "0000:01:00.0"), "aer_dev_nonfatal")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	txt := strings.Replace(string(b), "TLP 0\n", "TLP 11\n", 1)
	txt = strings.Replace(txt, "TOTAL_ERR_NONFATAL 0", "TOTAL_ERR_NONFATAL 11", 1)
	writeFile(t, p, txt)
	u := waitUpdate(t, updates, "the AER finding", func(u Update) bool { return hasFinding(u.Findings, "0000:01:00.0", CodeAERNonFatal) })
	d := u.Topology.Device("0000:01:00.0")
	if d.AER.NonFatal.ByType["TLP"] != 11 || d.AER.NonFatal.Total != 11 {
		t.Errorf("counters = %+v", d.AER.NonFatal)
	}
}

func TestSourceFirstScanFails(t *testing.T) {
	s := NewSource(t.TempDir(), nil, SourceOptions{Uevents: make(chanUevents)})
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("Run on an empty sysfs succeeded")
	}
}

func TestDiff(t *testing.T) {
	base := scanFixture(t, fixture(t, "sys-emulated"))
	cur := clone(t, base)
	remove(cur, "0000:03:00.0")
	cur.Device("0000:04:00.0").AER.Correctable.Total = 1
	cur.Devices = append(cur.Devices, Device{BDF: "0000:05:00.0"})
	got := Diff(base, cur)
	want := []Change{{"removed", "0000:03:00.0"}, {"changed", "0000:04:00.0"}, {"added", "0000:05:00.0"}}
	if len(got) != len(want) {
		t.Fatalf("Diff = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Diff[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestParseUevent(t *testing.T) {
	msg := "remove@/devices/pci0000:00/0000:00:03.0/0000:01:00.0/0000:02:01.0/0000:04:00.0\x00ACTION=remove\x00DEVPATH=/devices/pci0000:00/0000:00:03.0/0000:01:00.0/0000:02:01.0/0000:04:00.0\x00SUBSYSTEM=pci\x00PCI_SLOT_NAME=0000:04:00.0\x00SEQNUM=1234\x00"
	ev, err := ParseUevent([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != "remove" || ev.Subsystem != "pci" || ev.Env["PCI_SLOT_NAME"] != "0000:04:00.0" || !strings.HasSuffix(ev.DevPath, "0000:04:00.0") {
		t.Errorf("ParseUevent = %+v", ev)
	}
	for _, bad := range []string{"", "libudev\x00ACTION=add", "noat\x00", "add@/x\x00BROKEN\x00"} {
		if _, err := ParseUevent([]byte(bad)); err == nil {
			t.Errorf("ParseUevent(%q) accepted", bad)
		}
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte("add@/devices/pci0000:00/0000:00:03.0\x00ACTION=add\x00SUBSYSTEM=pci\x00"))
	f.Add([]byte("change@/devices/x\x00ACTION=change\x00ERROR_EVENT=AER_NONFATAL\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseUevent(b)
		if err == nil && (ev.Action == "" || ev.DevPath == "") {
			t.Fatalf("accepted %q with empty action or path", b)
		}
	})
}

// The real socket opens, and a pending Read ends when its context does.
func TestNetlinkUeventsCancel(t *testing.T) {
	n, err := OpenUevents()
	if err != nil {
		t.Skipf("no uevent socket in this sandbox: %v", err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	for {
		_, err := n.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				t.Fatalf("Read: %v", err)
			}
			return
		}
	}
}
