package redfish_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/redfish/redfishtest"
	"podos.dev/podos/internal/redfishschema"
)

// newValidator returns the shared DMTF schema validator
// (internal/redfishschema holds the project's one copy of the schemas).
func newValidator(t testing.TB) *redfishschema.Validator {
	t.Helper()
	v, err := redfishschema.New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// staticSEL is a SEL as an IPMI BMC reports it (test input for the
// background SEL reader; the real one is tested against ipmi_sim).
type staticSEL []bmc.SELEntry

func (s staticSEL) SEL(context.Context) ([]bmc.SELEntry, error) { return s, nil }

// populate gives every kind of resource at least one member: events in
// the log, a second account, a session, a subscription, SEL entries.
func populate(t *testing.T, srv *redfishtest.Server) {
	t.Helper()
	for _, ev := range []events.Event{
		{Kind: events.KindSensor, Source: "20-0-11", Severity: health.Warning, From: health.OK, To: health.Warning,
			Message: "INLET_TEMP 36 degC above 35", MessageID: "ResourceEvent.1.4.ResourceStatusChangedWarning",
			MessageArgs: []string{"INLET_TEMP", "Warning"}, Origin: "/redfish/v1/Chassis/blade1/Sensors/20-0-11"},
		{Kind: events.KindService, Source: "boardd", Severity: health.OK, Message: "boardd started",
			MessageID: "ResourceEvent.1.4.ResourceStateChanged", MessageArgs: []string{"boardd", "Enabled"}, Origin: "/redfish/v1/Managers/boardd"},
	} {
		if _, err := srv.Emitter.Emit(ev); err != nil {
			t.Fatal(err)
		}
	}
	if r := srv.AsAdmin(t, "POST", "/redfish/v1/AccountService/Accounts", map[string]any{"UserName": "viewer", "Password": "viewer-pw-1", "RoleId": "ReadOnly"}); r.Status != http.StatusCreated {
		t.Fatalf("create account: %d %s", r.Status, r.Body)
	}
	if r := srv.Do(t, "POST", "/redfish/v1/SessionService/Sessions", "", "", map[string]any{"UserName": "viewer", "Password": "viewer-pw-1"}); r.Status != http.StatusCreated {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	if r := srv.AsAdmin(t, "POST", "/redfish/v1/EventService/Subscriptions", map[string]any{
		"Destination": "http://127.0.0.1:9/events", "Protocol": "Redfish", "Context": "crawl",
		"OriginResources": []any{map[string]any{"@odata.id": "/redfish/v1/Chassis/blade1"}},
	}); r.Status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.Status, r.Body)
	}
}

// waitFor polls cond until it holds or the (generous) deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// links collects every @odata.id under v.
func links(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "@odata.id" {
				if s, ok := e.(string); ok {
					*out = append(*out, s)
				}
				continue
			}
			links(e, out)
		}
	case []any:
		for _, e := range x {
			links(e, out)
		}
	}
}

// TestSchemaCrawl crawls the service from /redfish/v1, following every
// @odata.id, and validates every resource against DMTF's JSON schema for
// its @odata.type.
func TestSchemaCrawl(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{SEL: staticSEL{
		{RecordID: 1, Time: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC), GeneratorID: 0x20, SensorType: 0x01, SensorNumber: 0x10, EventType: 0x01, EventData: [3]byte{0x57, 0x6e, 0x6e}, Message: "Temperature OIL_TEMP Upper Non-critical going high"},
		{RecordID: 2, Time: time.Date(2026, 11, 22, 3, 1, 0, 0, time.UTC), GeneratorID: 0x41, SensorType: 0xc0, SensorNumber: 0x20, EventType: 0x03, Deassertion: true},
	}})
	populate(t, srv)
	// One sensor the BMC stopped answering, as the collector reports it.
	snap := redfishtest.Snapshot(srv.Config, 2, time.Now(), nil)
	snap.Sensors[0].Reading.Available = false
	snap.Sensors[0].Reading.Err = "no response"
	snap.Sensors[0].State = health.Unavailable
	srv.Store.Swap(snap)
	waitFor(t, "event log and SEL in the tree", func() bool {
		a := srv.AsAdmin(t, "GET", "/redfish/v1/Managers/boardd/LogServices/EventLog/Entries", nil)
		b := srv.AsAdmin(t, "GET", "/redfish/v1/Managers/boardd/LogServices/SEL/Entries", nil)
		return a.JSON["Members@odata.count"] == float64(2) && b.JSON["Members@odata.count"] == float64(2)
	})
	v := newValidator(t)
	seen := map[string]bool{}
	queue := []string{"/redfish/v1"}
	types := map[string]bool{}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if seen[u] {
			continue
		}
		seen[u] = true
		r := srv.AsAdmin(t, "GET", u, nil)
		if r.Status != http.StatusOK {
			t.Errorf("GET %s: %d %s", u, r.Status, r.Body)
			continue
		}
		typ, _ := r.JSON["@odata.type"].(string)
		if r.JSON["@odata.id"] != u {
			t.Errorf("%s: @odata.id is %v", u, r.JSON["@odata.id"])
		}
		if et, _ := r.JSON["@odata.etag"].(string); et == "" || et != r.Header.Get("ETag") {
			t.Errorf("%s: @odata.etag %q, ETag header %q", u, et, r.Header.Get("ETag"))
		}
		if !strings.Contains(r.Header.Get("Link"), "rel=describedby") || r.Header.Get("OData-Version") != "4.0" || r.Header.Get("Allow") == "" {
			t.Errorf("%s: headers %v", u, r.Header)
		}
		if _, err := redfishschema.URI(typ); err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		types[typ] = true
		if err := v.Validate(typ, r.Body); err != nil {
			t.Errorf("%s (%s): %v\n%s", u, typ, err, r.Body)
		}
		var ls []string
		links(r.JSON, &ls)
		for _, l := range ls {
			if !seen[l] && !strings.Contains(l, "/Actions/") && !strings.Contains(l, "#") {
				queue = append(queue, l)
			}
		}
	}
	for _, want := range []string{"#Sensor.v1_12_0.Sensor", "#Pump.v1_2_0.Pump", "#LeakDetector.v1_6_0.LeakDetector", "#Fan.v1_6_0.Fan",
		"#PowerSupplyMetrics.v1_2_0.PowerSupplyMetrics", "#LogEntry.v1_21_0.LogEntry", "#Session.v1_8_0.Session",
		"#EventDestination.v1_16_0.EventDestination", "#ManagerAccount.v1_14_1.ManagerAccount", "#Role.v1_3_3.Role"} {
		if !types[want] {
			t.Errorf("crawl never reached a %s", want)
		}
	}
	t.Logf("validated %d resources of %d types", len(seen), len(types))

	// The registries the service serves, against MessageRegistry.
	for _, p := range []string{"Base", "ResourceEvent"} {
		f := srv.AsAdmin(t, "GET", "/redfish/v1/Registries/"+p, nil)
		locs, _ := f.JSON["Location"].([]any)
		if len(locs) != 1 {
			t.Fatalf("registry file %s: %s", p, f.Body)
		}
		uri := locs[0].(map[string]any)["Uri"].(string)
		reg := srv.AsAdmin(t, "GET", uri, nil)
		if reg.Status != http.StatusOK {
			t.Fatalf("GET %s: %d", uri, reg.Status)
		}
		if err := v.Validate("#MessageRegistry.v1_7_0.MessageRegistry", reg.Body); err != nil {
			t.Errorf("registry %s: %v", uri, err)
		}
	}
	// Error bodies, against redfish-error.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/redfish/v1/Nothing", ""},
		{"PATCH", "/redfish/v1/SessionService", "{bad"},
		{"GET", "/redfish/v1/Chassis?$top=x", ""},
	} {
		r := srv.AsAdmin(t, c.method, c.path, c.body)
		if r.Status < 400 {
			t.Fatalf("%s %s: %d", c.method, c.path, r.Status)
		}
		if err := v.Validate("#redfish-error.v1_0_2.RedfishError", r.Body); err != nil {
			t.Errorf("error body of %s %s: %v\n%s", c.method, c.path, err, r.Body)
		}
	}
	// The validator must catch a bad resource, or this test proves nothing.
	var bad map[string]any
	if err := json.Unmarshal([]byte(`{"@odata.id":"/x","@odata.type":"#Sensor.v1_12_0.Sensor","Id":"x","Name":"x","ReadingType":"Bogus","Unknown":1}`), &bad); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate("#Sensor.v1_12_0.Sensor", bad); err == nil {
		t.Error("the validator accepted a Sensor with a bad ReadingType and an unknown property")
	}
	// Schemas of the extra trees (fabric, PCIe devices) must be loadable
	// from the embedded copy too.
	for _, typ := range extraTypes {
		if err := v.Check(typ); err != nil {
			t.Errorf("schema for %s: %v", typ, err)
		}
	}
	if os.Getenv("REDFISH_SCHEMA_USED") != "" {
		os.WriteFile(os.Getenv("REDFISH_SCHEMA_USED"), []byte(strings.Join(v.Used(), "\n")+"\n"), 0o644)
	}
}

// extraTypes are the resource types engineer F's trees serve.
var extraTypes = []string{
	"#FabricCollection.FabricCollection", "#Fabric.v1_4_0.Fabric", "#SwitchCollection.SwitchCollection", "#Switch.v1_11_0.Switch",
	"#PortCollection.PortCollection", "#Port.v1_18_0.Port", "#EndpointCollection.EndpointCollection", "#Endpoint.v1_8_2.Endpoint",
	"#PCIeDeviceCollection.PCIeDeviceCollection", "#PCIeDevice.v1_21_0.PCIeDevice", "#PCIeFunctionCollection.PCIeFunctionCollection",
	"#PCIeFunction.v1_7_0.PCIeFunction", "#ZoneCollection.ZoneCollection", "#Zone.v1_6_3.Zone",
	"#Event.v1_13_0.Event", "#MessageRegistry.v1_7_0.MessageRegistry",
}

// validateEvent checks an SSE payload against Event.v1_13_0.
func validateEvent(t testing.TB, v *redfishschema.Validator, data []byte) {
	t.Helper()
	if err := v.Validate("#Event.v1_13_0.Event", data); err != nil {
		t.Errorf("event payload: %v\n%s", err, data)
	}
}
