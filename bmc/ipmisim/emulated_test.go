package ipmisim_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmi"
	"podos.dev/podos/bmc/ipmisim"
	boardconfig "podos.dev/podos/board-configs"
)

// The shipped emulated board runs on ipmi_sim and reads back as its
// config says: every sim sensor is discovered with its name, a class that
// fits its role, and its initial value. The expectations are computed
// from the file, so the test follows the config as it evolves.
func TestEmulatedRuggedPODBoard(t *testing.T) {
	t.Parallel()
	cfg, err := boardconfig.Load(filepath.Join("..", "..", "board-configs", "emulated-ruggedpod.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sim, err := ipmisim.Start(ctx, t, cfg, ipmisim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ipmi.DialLAN(ctx, ipmi.LANConfig{Host: "127.0.0.1", Port: sim.LANPort(), Username: ipmisim.User, Password: ipmisim.Password},
		ipmi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	readings, err := c.Read(ctx, defs)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for i, d := range defs {
		got[d.Name] = i
	}
	for _, s := range cfg.Sensors {
		if s.Sim == nil {
			continue
		}
		i, ok := got[s.Name]
		if !ok {
			t.Errorf("%s: not discovered", s.Name)
			continue
		}
		d, r := defs[i], readings[i]
		if want := ipmi.SensorID(0x20, 0, s.Sim.Number); d.ID != want {
			t.Errorf("%s: id %s, want %s", s.Name, d.ID, want)
		}
		if !classFits(s.Role, d.Class) {
			t.Errorf("%s: class %s does not fit role %s", s.Name, d.Class, s.Role)
		}
		if !r.Available {
			t.Errorf("%s: unavailable: %s", s.Name, r.Err)
			continue
		}
		if s.Sim.EventType != 0x01 {
			if r.State != s.Sim.Initial {
				t.Errorf("%s: state 0x%04x, want 0x%04x", s.Name, r.State, s.Sim.Initial)
			}
			continue
		}
		raw := float64(s.Sim.Initial)
		if s.Sim.Signed {
			raw = float64(int8(uint8(s.Sim.Initial)))
		}
		want := (float64(s.Sim.M)*raw + float64(s.Sim.B)*math.Pow10(s.Sim.BExp)) * math.Pow10(s.Sim.RExp)
		if math.Abs(r.Value-want) > 1e-6 {
			t.Errorf("%s: value %v, want %v", s.Name, r.Value, want)
		}
		if len(s.Sim.RawThresholds) > 0 && d.Thresholds == (bmc.Thresholds{}) {
			t.Errorf("%s: thresholds not read", s.Name)
		}
	}
}

func classFits(role boardconfig.Role, c bmc.Class) bool {
	switch role {
	case boardconfig.RolePSUInput, boardconfig.RolePSUOutput:
		return c == bmc.ClassVoltage || c == bmc.ClassCurrent || c == bmc.ClassPower
	case boardconfig.RolePSUStatus:
		return c == bmc.ClassPSU
	case boardconfig.RoleFuse:
		return c == bmc.ClassFuse
	case boardconfig.RoleTempOil, boardconfig.RoleTempInlet, boardconfig.RoleTempCPU, boardconfig.RoleTemp:
		return c == bmc.ClassTemperature
	case boardconfig.RolePump:
		return c == bmc.ClassPump
	case boardconfig.RoleFan:
		return c == bmc.ClassFan
	case boardconfig.RoleLeak:
		return c == bmc.ClassLeak
	}
	return true
}
