package e2e

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"

	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/internal/testtool"
)

// TestGofishAndRedfishtoolReadLiveSensors: the standard Redfish clients
// read the live board's sensors, and the values are the BMC's: every
// threshold sensor's initial raw reading converted through its SDR, and
// a value changed at the BMC while boardd runs.
func TestGofishAndRedfishtoolReadLiveSensors(t *testing.T) {
	rft := testtool.Require(t, "redfishtool")
	b := startBoard(t, boardOptions{})
	// A value the config does not start with, set at the BMC (OK range).
	b.setValue(t, "PSU_VIN", 24.6)
	b.waitSnap(t, "PSU_VIN 24.6 V read", func(s *snapshot.Snapshot) bool {
		for _, x := range s.Sensors {
			if x.Def.Name == "PSU_VIN" {
				return math.Abs(x.Reading.Value-24.6) < 1e-6
			}
		}
		return false
	})
	want := map[string]float64{}
	for _, cs := range b.cfg.Sensors {
		if cs.Sim != nil && cs.Sim.IsThreshold() {
			want[cs.Name] = cs.Sim.SimValue(uint8(cs.Sim.Initial))
		}
	}
	want["PSU_VIN"] = 24.6

	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: b.url, Username: adminUser, Password: adminPW, HTTPClient: b.client})
	if err != nil {
		t.Fatalf("gofish connect: %v", err)
	}
	defer c.Logout()
	chassis, err := c.Service.Chassis()
	if err != nil {
		t.Fatalf("gofish chassis: %v", err)
	}
	var sensors []*gofishSensor
	for _, ch := range chassis {
		if ch.ID != b.cfg.Board.ID {
			continue
		}
		ss, err := ch.Sensors()
		if err != nil {
			t.Fatalf("gofish sensors: %v", err)
		}
		for _, s := range ss {
			sensors = append(sensors, &gofishSensor{ID: s.ID, Name: s.Name, Reading: float64(s.Reading), Health: string(s.Status.Health)})
		}
	}
	if len(sensors) != len(b.cfg.Sensors) {
		t.Errorf("gofish read %d sensors of Chassis/%s, the board has %d", len(sensors), b.cfg.Board.ID, len(b.cfg.Sensors))
	}
	seen := 0
	for _, s := range sensors {
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		seen++
		if math.Abs(s.Reading-w) > 1e-3*math.Max(1, math.Abs(w)) || s.Health != "OK" {
			t.Errorf("gofish %s (%s): %v %s, the BMC says %v OK", s.Name, s.ID, s.Reading, s.Health, w)
		}
	}
	if seen != len(want) {
		t.Errorf("gofish saw %d of the %d threshold sensors", seen, len(want))
	}

	// redfishtool (Debian's): a raw GET of the sensor resource.
	id := b.sensor(t, "PSU_VIN").Def.ID
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"-r", strings.TrimPrefix(b.url, "https://"), "-u", adminUser, "-p", adminPW, "-S", "Always", "-T", "30",
		"raw", "GET", "/redfish/v1/Chassis/" + b.cfg.Board.ID + "/Sensors/" + id}
	out, err := exec.CommandContext(ctx, rft, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("redfishtool %v: %v\n%s\n%s", args, err, out, stderr)
	}
	var m struct {
		ID, Name     string
		Reading      float64
		ReadingUnits string
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("redfishtool output is not JSON: %v\n%s", err, out)
	}
	if m.ID != id || m.Name != "PSU_VIN" || math.Abs(m.Reading-24.6) > 1e-6 || m.ReadingUnits != "V" {
		t.Errorf("redfishtool GET Sensors/%s: %+v, want PSU_VIN 24.6 V", id, m)
	}
}

type gofishSensor struct {
	ID, Name, Health string
	Reading          float64
}
