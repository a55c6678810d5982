package fabric

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/health"
)

// emulatedFabric mirrors board-configs/emulated-ruggedpod.yaml's fabric.
func emulatedFabric() *boardconfig.Fabric {
	return &boardconfig.Fabric{ID: "pcie", AERLimit: 10, Switches: []boardconfig.Switch{{
		Name: "sw0", RootPort: "0000:00:03.0",
		Ports: []boardconfig.SwitchPort{
			{Port: 1, Expect: "storage", Width: 1},
			{Port: 2, Expect: "ethernet", Width: 1},
			{Port: 3, Expect: "empty"},
		},
	}}}
}

// clone deep-copies a topology so a case can change it.
func clone(t testing.TB, topo *Topology) *Topology {
	t.Helper()
	b, err := json.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	var c Topology
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func remove(topo *Topology, bdf string) {
	topo.Devices = slices.DeleteFunc(topo.Devices, func(d Device) bool { return d.BDF == bdf || d.Parent == bdf })
}

// move re-parents a function below another port, renaming it onto the
// port's secondary bus as the kernel would.
func move(topo *Topology, bdf, port string) {
	p := topo.Device(port)
	for i := range topo.Devices {
		if topo.Devices[i].BDF == bdf {
			topo.Devices[i].BDF = p.SecondaryBus + ":00.0"
			topo.Devices[i].Parent = port
		}
	}
	slices.SortFunc(topo.Devices, func(a, b Device) int { return strings.Compare(a.BDF, b.BDF) })
}

func TestEvaluate(t *testing.T) {
	base := scanFixture(t, fixture(t, "sys-emulated"))
	now := base.Time
	type want struct {
		subject, code string
		state         health.State
		reason        string // substring
	}
	cases := []struct {
		name   string
		cfg    func(*boardconfig.Fabric)
		change func(*Topology)
		prev   func(*Topology) *AERSample
		want   []want
	}{
		{name: "healthy"},
		{name: "no expectations", cfg: func(f *boardconfig.Fabric) { f.Switches = nil }},
		{
			name:   "ethernet removed",
			change: func(tp *Topology) { remove(tp, "0000:04:00.0") },
			want:   []want{{"sw0/port2", CodeDeviceMissing, health.Critical, "expected a ethernet device in port 2 of sw0: port empty, no link"}},
		},
		{
			name:   "ethernet in the wrong port",
			change: func(tp *Topology) { move(tp, "0000:04:00.0", "0000:02:02.0") },
			want: []want{
				{"0000:05:00.0", CodeMisSlotted, health.Warning, "ethernet device 0000:05:00.0 in port 3 of sw0, which should be empty (mis-slotted: expected in port 2)"},
				{"sw0/port2", CodeDeviceMissing, health.Critical, "a ethernet device (0000:05:00.0) is in port 3 instead"},
			},
		},
		{
			name: "ethernet where storage belongs",
			change: func(tp *Topology) {
				remove(tp, "0000:03:00.0")
				move(tp, "0000:04:00.0", "0000:02:00.0")
			},
			want: []want{
				{"0000:03:00.0", CodeWrongDevice, health.Critical, "expected a storage device in port 1 of sw0, found ethernet"},
				{"sw0/port2", CodeDeviceMissing, health.Critical, "port empty"},
			},
		},
		{
			name: "extra nvme in the empty port",
			change: func(tp *Topology) {
				tp.Devices = append(tp.Devices, Device{BDF: "0000:05:00.0", Parent: "0000:02:02.0", Type: TypeEndpoint, Class: 0x010802})
			},
			// storage is expected in port 1 and is there: this one is extra.
			want: []want{{"0000:05:00.0", CodeExtraDevice, health.Warning, "nvme device 0000:05:00.0 in port 3"}},
		},
		{
			name: "extra ethernet in the empty port, nothing missing",
			change: func(tp *Topology) {
				tp.Devices = append(tp.Devices, Device{BDF: "0000:05:00.0", Parent: "0000:02:02.0", Type: TypeEndpoint, Class: 0x020000})
			},
			want: []want{{"0000:05:00.0", CodeExtraDevice, health.Warning, "which should be empty"}},
		},
		{
			name:   "device in a port the config does not list",
			cfg:    func(f *boardconfig.Fabric) { f.Switches[0].Ports = f.Switches[0].Ports[:2] },
			change: func(tp *Topology) { move(tp, "0000:03:00.0", "0000:02:02.0"); remove(tp, "0000:02:00.0") },
			want: []want{
				{"0000:05:00.0", CodeExtraDevice, health.Warning, "does not list"},
				{"sw0/port1", CodePortMissing, health.Critical, "downstream port 1 of switch sw0 is not on the bus"},
			},
		},
		{
			name:   "root port missing",
			change: func(tp *Topology) { remove(tp, "0000:00:03.0") },
			want:   []want{{"0000:00:03.0", CodeRootPortMissing, health.Critical, "not on the bus"}},
		},
		{
			name:   "switch missing",
			change: func(tp *Topology) { remove(tp, "0000:01:00.0") },
			want:   []want{{"0000:00:03.0", CodeSwitchMissing, health.Critical, "switch sw0 not found below root port 0000:00:03.0"}},
		},
		{
			name: "link slower than expected",
			cfg:  func(f *boardconfig.Fabric) { f.Switches[0].Ports[1].Speed = 8 },
			want: []want{{"0000:04:00.0", CodeLinkSpeed, health.Warning, "trained at 2.5 GT/s, expected 8 GT/s"}},
		},
		{
			name: "link narrower than expected",
			cfg:  func(f *boardconfig.Fabric) { f.Switches[0].Ports[0].Width = 4 },
			want: []want{{"0000:03:00.0", CodeLinkWidth, health.Warning, "trained at x1, expected x4"}},
		},
		{
			name: "link trained below what both ends support",
			change: func(tp *Topology) {
				tp.Device("0000:02:01.0").Link.MaxWidth = 4
				tp.Device("0000:04:00.0").Link.MaxWidth = 4
			},
			want: []want{{"0000:04:00.0", CodeLinkWidth, health.Warning, "below the x4 both ends support"}},
		},
		{
			name: "root port link trained down (x-speed, x-width)",
			change: func(tp *Topology) {
				up := tp.Device("0000:01:00.0").Link
				up.MaxSpeed, up.MaxWidth = 16, 16
				rp := tp.Device("0000:00:03.0").Link
				rp.Speed, rp.Width = 2.5, 1
			},
			want: []want{
				{"0000:01:00.0", CodeLinkSpeed, health.Warning, "link 0000:00:03.0-0000:01:00.0 trained at 2.5 GT/s, below the 16 GT/s"},
				{"0000:01:00.0", CodeLinkWidth, health.Warning, "trained at x1, below the x16"},
			},
		},
		{
			name:   "correctable burst above the limit",
			change: func(tp *Topology) { tp.Device("0000:04:00.0").AER.Correctable.Total = 11 },
			prev:   func(tp *Topology) *AERSample { s := SampleAER(base); s.Time = now.Add(-10 * time.Second); return s },
			want:   []want{{"0000:04:00.0", CodeAERCorrectable, health.Warning, "11 correctable AER errors on 0000:04:00.0 in 10s (11.0/min, limit 10/min)"}},
		},
		{
			name:   "correctable at the limit",
			change: func(tp *Topology) { tp.Device("0000:04:00.0").AER.Correctable.Total = 10 },
			prev:   func(tp *Topology) *AERSample { s := SampleAER(base); s.Time = now.Add(-10 * time.Second); return s },
		},
		{
			name:   "errors spread over minutes",
			change: func(tp *Topology) { tp.Device("0000:01:00.0").AER.NonFatal.Total = 25 },
			prev:   func(tp *Topology) *AERSample { s := SampleAER(base); s.Time = now.Add(-3 * time.Minute); return s },
		},
		{
			name: "non-fatal and fatal bursts",
			change: func(tp *Topology) {
				tp.Device("0000:01:00.0").AER.NonFatal.Total = 12
				tp.Device("0000:00:03.0").AER.Fatal.Total = 40
			},
			prev: func(tp *Topology) *AERSample { s := SampleAER(base); s.Time = now.Add(-time.Minute); return s },
			want: []want{
				{"0000:00:03.0", CodeAERFatal, health.Critical, "40 fatal AER errors"},
				{"0000:01:00.0", CodeAERNonFatal, health.Critical, "12 non-fatal AER errors"},
			},
		},
		{
			name:   "counter went down (device re-added)",
			change: func(tp *Topology) { tp.Device("0000:04:00.0").AER.Correctable.Total = 3 },
			prev: func(tp *Topology) *AERSample {
				s := SampleAER(base)
				s.Time = now.Add(-10 * time.Second)
				s.Counts["0000:04:00.0"] = AERTotals{Correctable: 50}
				return s
			},
		},
		{
			name:   "no baseline, no AER findings",
			change: func(tp *Topology) { tp.Device("0000:04:00.0").AER.Fatal.Total = 99 },
		},
		{
			name: "default limit when the config sets none",
			cfg:  func(f *boardconfig.Fabric) { f.AERLimit = 0 },
			change: func(tp *Topology) {
				tp.Device("0000:04:00.0").AER.Correctable.Total = uint64(DefaultAERLimit + 1)
			},
			prev: func(tp *Topology) *AERSample { return SampleAER(base) },
			want: []want{{"0000:04:00.0", CodeAERCorrectable, health.Warning, fmt.Sprintf("limit %d/min", DefaultAERLimit)}},
		},
		{
			name: "unknown expected class",
			cfg:  func(f *boardconfig.Fabric) { f.Switches[0].Ports[2].Expect = "gpu" },
			want: []want{{"sw0/port3", CodeBadExpectation, health.Warning, `unknown device class "gpu"`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := emulatedFabric()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			topo := clone(t, base)
			if tc.change != nil {
				tc.change(topo)
			}
			var prev *AERSample
			if tc.prev != nil {
				prev = tc.prev(topo)
			}
			got := Evaluate(cfg, topo, prev, now)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), dumpFindings(got))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Subject != w.subject || g.Code != w.code || g.State != w.state || !strings.Contains(g.Reason, w.reason) {
					t.Errorf("finding %d = %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

func TestEvaluateNil(t *testing.T) {
	if f := Evaluate(emulatedFabric(), nil, nil, time.Now()); f != nil {
		t.Fatalf("Evaluate(nil topology) = %v", f)
	}
}

func TestClassMatches(t *testing.T) {
	for _, tc := range []struct {
		expect string
		class  uint32
		want   bool
	}{
		{"nvme", 0x010802, true}, {"nvme", 0x010000, false},
		{"storage", 0x010802, true}, {"storage", 0x010000, true}, {"storage", 0x020000, false},
		{"ethernet", 0x020000, true}, {"ethernet", 0x028000, false}, {"network", 0x028000, true},
		{"accelerator", 0x120000, true}, {"accelerator", 0x030200, true}, {"accelerator", 0x030000, false},
		{"empty", 0x020000, false},
	} {
		if got := ClassMatches(tc.expect, tc.class); got != tc.want {
			t.Errorf("ClassMatches(%q, %06x) = %v", tc.expect, tc.class, got)
		}
	}
}

func dumpFindings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s %s: %s\n", f.Subject, f.Code, f.State, f.Reason)
	}
	return b.String()
}
