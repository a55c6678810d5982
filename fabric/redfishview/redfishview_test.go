package redfishview

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/fabric"
	"podos.dev/podos/fabric/internal/sysfsfix"
	"podos.dev/podos/internal/redfishschema"
)

// validate checks o against the DMTF schema of its own @odata.type
// (internal/redfishschema holds the project's one copy of the schemas).
func validate(v *redfishschema.Validator, o map[string]any) error {
	typ, _ := o["@odata.type"].(string)
	return v.Validate(typ, o)
}

func emulated(t testing.TB) *fabric.Topology {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "sys-emulated.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := sysfsfix.Extract(b, dir); err != nil {
		t.Fatal(err)
	}
	topo, err := fabric.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

func expected() *boardconfig.Fabric {
	return &boardconfig.Fabric{ID: "pcie", AERLimit: 10, Switches: []boardconfig.Switch{{
		Name: "sw0", RootPort: "0000:00:03.0",
		Ports: []boardconfig.SwitchPort{{Port: 1, Expect: "storage"}, {Port: 2, Expect: "ethernet"}, {Port: 3, Expect: "empty"}},
	}}}
}

func TestResourcesValidate(t *testing.T) {
	topo := emulated(t)
	findings := fabric.Evaluate(expected(), topo, nil, topo.Time)
	findings = append(findings, fabric.Finding{Subject: "0000:04:00.0", Code: fabric.CodeAERCorrectable, State: health.Warning, Reason: "x"})
	res := Resources(View{Topology: topo, Findings: findings, Expected: expected(), ChassisID: "blade1"})
	v, err := redfishschema.New()
	if err != nil {
		t.Fatal(err)
	}
	uris := make([]string, 0, len(res))
	for u := range res {
		uris = append(uris, u)
	}
	sort.Strings(uris)
	types := map[string]int{}
	for _, u := range uris {
		o := res[u]
		if o["@odata.id"] != u {
			t.Errorf("%s: @odata.id %v", u, o["@odata.id"])
		}
		if err := validate(v, o); err != nil {
			t.Errorf("%s does not validate: %v", u, err)
		}
		types[strings.Split(strings.TrimPrefix(o["@odata.type"].(string), "#"), ".")[0]]++
	}
	for typ, n := range map[string]int{"Fabric": 1, "FabricCollection": 1, "Switch": 2, "SwitchCollection": 1,
		"Port": 5, "PortCollection": 2, "PortMetrics": 5, "Endpoint": 2, "EndpointCollection": 1,
		"Zone": 1, "ZoneCollection": 1, "PCIeDeviceCollection": 1, "PCIeDevice": 11, "PCIeFunction": 13, "PCIeFunctionCollection": 11} {
		if types[typ] != n {
			t.Errorf("%d %s resources, want %d", types[typ], typ, n)
		}
	}
	if os.Getenv("REDFISHVIEW_LIST_SCHEMAS") != "" {
		t.Logf("schemas used:\n%s", strings.Join(v.Used(), "\n"))
	}

	// The validator is not vacuous: a wrong enum or an unknown property fails.
	bad := map[string]any{}
	for k, x := range res["/redfish/v1/Fabrics/pcie/Switches/sw0/Ports/DP2"] {
		bad[k] = x
	}
	bad["LinkStatus"] = "Bogus"
	if err := validate(v, bad); err == nil {
		t.Error("a Port with LinkStatus Bogus validated")
	}
	delete(bad, "LinkStatus")
	bad["Lanes"] = 4
	if err := validate(v, bad); err == nil {
		t.Error("a Port with an unknown property validated")
	}

	// Spot checks.
	fab := "/redfish/v1/Fabrics/pcie"
	dp2 := res[fab+"/Switches/sw0/Ports/DP2"]
	if dp2["LinkStatus"] != "LinkUp" || dp2["ActiveWidth"] != 1 || dp2["CurrentSpeedGbps"] != 2.5 || dp2["PortId"] != "0000:02:01.0" {
		t.Errorf("DP2 = %v", dp2)
	}
	if st := dp2["Status"].(map[string]any); st["Health"] != "Warning" {
		t.Errorf("DP2 health %v, want Warning from the NIC's AER finding", st)
	}
	if dp3 := res[fab+"/Switches/sw0/Ports/DP3"]; dp3["LinkStatus"] != "NoLink" || dp3["ActiveWidth"] != 0 {
		t.Errorf("DP3 = %v", dp3)
	}
	up := res[fab+"/Switches/sw0/Ports/UP"]
	if c := up["Links"].(map[string]any)["ConnectedPorts"].([]any); len(c) != 1 || c[0].(map[string]any)["@odata.id"] != fab+"/Switches/RootComplex/Ports/0000-00-03-0" {
		t.Errorf("UP connected to %v", c)
	}
	m := res[fab+"/Switches/sw0/Ports/DP2/Metrics"]["PCIeErrors"].(map[string]any)
	if m["CorrectableErrorCount"] != uint64(0) {
		t.Errorf("DP2 metrics %v", m)
	}
	nic := res["/redfish/v1/Chassis/blade1/PCIeDevices/0000-04-00"]
	pi := nic["PCIeInterface"].(map[string]any)
	if nic["Manufacturer"] != "Intel Corporation" || pi["PCIeType"] != "Gen1" || pi["LanesInUse"] != 1 || pi["MaxLanes"] != 1 {
		t.Errorf("NIC = %v", nic)
	}
	fn := res["/redfish/v1/Chassis/blade1/PCIeDevices/0000-04-00/PCIeFunctions/0"]
	if fn["DeviceClass"] != "NetworkController" || fn["ClassCode"] != "0x020000" || fn["VendorId"] != "0x8086" {
		t.Errorf("NIC function = %v", fn)
	}
}

// A missing NIC: port 2 shows no link and Critical health, the endpoint is gone.
func TestResourcesMissingDevice(t *testing.T) {
	topo := emulated(t)
	var devs []fabric.Device
	for _, d := range topo.Devices {
		if d.BDF != "0000:04:00.0" {
			devs = append(devs, d)
		}
	}
	topo = &fabric.Topology{Time: topo.Time, Devices: devs, Slots: topo.Slots}
	f := fabric.Evaluate(expected(), topo, nil, topo.Time)
	res := Resources(View{Topology: topo, Findings: f, Expected: expected(), ChassisID: "blade1"})
	dp2 := res["/redfish/v1/Fabrics/pcie/Switches/sw0/Ports/DP2"]
	if dp2["LinkStatus"] != "NoLink" || dp2["Status"].(map[string]any)["Health"] != "Critical" {
		t.Errorf("DP2 = %v", dp2)
	}
	if _, ok := res["/redfish/v1/Fabrics/pcie/Endpoints/0000-04-00-0"]; ok {
		t.Error("endpoint of the missing NIC still listed")
	}
	if h := res["/redfish/v1/Fabrics/pcie"]["Status"].(map[string]any)["Health"]; h != "Critical" {
		t.Errorf("fabric health %v", h)
	}
	if Resources(View{}) != nil {
		t.Error("nil topology rendered resources")
	}
}

func TestReset(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "sys-emulated.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := sysfsfix.Extract(b, root); err != nil {
		t.Fatal(err)
	}
	topo, err := fabric.Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	view := View{Topology: topo, Expected: expected(), ChassisID: "blade1"}
	targets := ResetTargets(view)
	target := "/redfish/v1/Fabrics/pcie/Switches/sw0/Ports/DP2/Actions/Port.Reset"
	if targets[target] != "0000:02:01.0" || len(targets) != 4 {
		t.Fatalf("targets = %v", targets)
	}
	a := &fabric.Actions{Root: root}
	ctx := context.Background()
	read := func(p string) string {
		b, _ := os.ReadFile(filepath.Join(root, p))
		return string(b)
	}
	nic := "devices/pci0000:00/0000:00:03.0/0000:01:00.0/0000:02:01.0/0000:04:00.0"
	if err := Reset(ctx, a, topo, "0000:02:01.0", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if read(nic+"/reset") != "1" {
		t.Error("ForceRestart did no bus reset")
	}
	if err := Reset(ctx, a, topo, "0000:02:01.0", map[string]any{"ResetType": "ForceOff"}); err != nil {
		t.Fatal(err)
	}
	if read("bus/pci/slots/0-2/power") != "0" {
		t.Error("ForceOff did not power the slot off")
	}
	if err := Reset(ctx, a, topo, "0000:02:01.0", map[string]any{"ResetType": "PowerCycle"}); err != nil {
		t.Fatal(err)
	}
	if read("bus/pci/slots/0-2/power") != "1" || read("devices/pci0000:00/0000:00:03.0/0000:01:00.0/0000:02:01.0/rescan") != "1" {
		t.Error("PowerCycle did not power on and rescan")
	}
	if err := Reset(ctx, a, topo, "0000:02:01.0", map[string]any{"ResetType": "GracefulRestart"}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []map[string]any{{"ResetType": "Nmi"}, {"ResetType": 3}} {
		if err := Reset(ctx, a, topo, "0000:02:01.0", body); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Reset(%v) = %v, want a bad request", body, err)
		}
	}
	if err := Reset(ctx, a, topo, "0000:09:00.0", nil); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Reset of an absent port = %v", err)
	}
}
