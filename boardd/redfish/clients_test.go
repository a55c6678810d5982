package redfish_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"

	"podos.dev/podos/boardd/redfish/redfishtest"
	"podos.dev/podos/internal/testtool"
)

// redfishtool runs Debian's redfishtool against the service and decodes
// its JSON output.
func redfishtool(t *testing.T, srv *redfishtest.Server, args ...string) map[string]any {
	t.Helper()
	bin := testtool.Require(t, "redfishtool")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"-r", srv.Addr, "-u", srv.Admin, "-p", srv.AdminPassword, "-S", "Always", "-T", "30"}, args...)
	out, err := exec.CommandContext(ctx, bin, full...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("redfishtool %v: %v\n%s\n%s", args, err, out, stderr)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("redfishtool %v: output is not JSON: %v\n%s", args, err, out)
	}
	return m
}

// TestRedfishtool reads the sensors with redfishtool (raw GET and the
// Chassis subcommand).
func TestRedfishtool(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	coll := redfishtool(t, srv, "raw", "GET", "/redfish/v1/Chassis/blade1/Sensors")
	members, _ := coll["Members"].([]any)
	if len(members) != len(srv.Store.Load().Sensors) {
		t.Fatalf("redfishtool saw %d sensors, snapshot has %d", len(members), len(srv.Store.Load().Sensors))
	}
	for _, s := range srv.Store.Load().Sensors {
		if s.Def.Name != "PSU_VIN" {
			continue
		}
		m := redfishtool(t, srv, "raw", "GET", "/redfish/v1/Chassis/blade1/Sensors/"+s.Def.ID)
		if m["Name"] != "PSU_VIN" || m["Reading"] != 24.0 || m["ReadingUnits"] != "V" {
			t.Fatalf("redfishtool PSU_VIN: %v", m)
		}
	}
	// redfishtool's "Chassis Sensors" operation walks the legacy Thermal
	// resource, which this service deliberately does not serve (DESIGN.md);
	// its Chassis get works.
	ch := redfishtool(t, srv, "Chassis", "-I", "blade1")
	if !strings.Contains(mustJSON(ch), `"/redfish/v1/Chassis/blade1/Sensors"`) {
		t.Fatalf("redfishtool Chassis get: %v", ch)
	}
	// Session authentication: redfishtool logs in (POST Sessions, uses
	// X-Auth-Token) and logs out (DELETE) around the request.
	sess := redfishtool(t, srv, "-A", "Session", "raw", "GET", "/redfish/v1/Managers/boardd/LogServices/EventLog")
	if sess["LogEntryType"] != "Event" {
		t.Fatalf("redfishtool with a session: %v", sess)
	}
	if n := len(srv.Auth.Sessions()); n != 0 {
		t.Errorf("redfishtool left %d sessions open (logout failed)", n)
	}
	root := redfishtool(t, srv, "root")
	if root["RedfishVersion"] == nil {
		t.Fatalf("redfishtool root: %v", root)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestGofish connects with gofish (session login) and reads the chassis
// sensors.
func TestGofish(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	c, err := gofish.Connect(gofish.ClientConfig{
		Endpoint: srv.URL, Username: srv.Admin, Password: srv.AdminPassword,
		HTTPClient: srv.Client,
	})
	if err != nil {
		t.Fatalf("gofish connect: %v", err)
	}
	defer c.Logout()
	chassis, err := c.Service.Chassis()
	if err != nil || len(chassis) != 1 || chassis[0].ID != "blade1" {
		t.Fatalf("gofish chassis: %v %v", chassis, err)
	}
	sensors, err := chassis[0].Sensors()
	if err != nil {
		t.Fatalf("gofish sensors: %v", err)
	}
	if len(sensors) != len(srv.Store.Load().Sensors) {
		t.Fatalf("gofish read %d sensors, snapshot has %d", len(sensors), len(srv.Store.Load().Sensors))
	}
	found := false
	for _, s := range sensors {
		if s.Name == "OIL_TEMP" {
			found = true
			if s.Reading != 40 || s.ReadingUnits != "Cel" || string(s.ReadingType) != "Temperature" {
				t.Errorf("gofish OIL_TEMP: reading %v %s %s", s.Reading, s.ReadingUnits, s.ReadingType)
			}
		}
	}
	if !found {
		t.Error("gofish did not see OIL_TEMP")
	}
}
