package ipmisim

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/internal/testtool"
)

func ipmitool(t *testing.T, s *Sim, args ...string) string {
	t.Helper()
	testtool.Require(t, "ipmitool")
	base := []string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", itoa(s.LANPort()), "-U", User, "-P", Password}
	out, err := exec.Command("ipmitool", append(base, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestStartServesSDR(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, t, TestBoard(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := ipmitool(t, s, "sdr", "elist", "all")
	t.Log(out)
	for _, sn := range TestBoard().Sensors {
		if !strings.Contains(out, sn.Name) {
			t.Errorf("sdr list lacks %s", sn.Name)
		}
	}
}

func TestSetAndConsoleErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(ctx, t, TestBoard(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		err     error
		errPart string
	}{
		{s.Set(ctx, "NOPE", 1), "no emulated sensor"},
		{s.Set(ctx, "PSU_STATUS", 1), "SetDiscrete"},
		{s.Set(ctx, "PSU_IN_V", -1), "out of range"},
		{s.Set(ctx, "PSU_IN_V", 256), "out of range"},
		{s.SetDiscrete(ctx, "PSU_IN_V", 1), "use Set"},
		{s.SetDiscrete(ctx, "PSU_STATUS", 0x8000), "bit 15"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.errPart) {
			t.Errorf("err = %v, want %q", tt.err, tt.errPart)
		}
	}
	if _, err := s.Console(ctx, "sensor_set_value 0x20 0 0x99 1 0"); err == nil {
		t.Error("console accepted a command on a sensor that does not exist")
	}
	if err := s.Set(ctx, "INLET_TEMP", -30); err != nil {
		t.Errorf("negative value on a signed sensor: %v", err)
	}
	out := ipmitool(t, s, "sensor", "reading", "INLET_TEMP")
	if !strings.Contains(out, "-30") {
		t.Errorf("ipmitool reads %q, want -30", out)
	}
	port := s.LANPort()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.LANPort() != port || !s.Running() {
		t.Errorf("restart moved the LAN port (%d -> %d) or is not running", port, s.LANPort())
	}
}
