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
