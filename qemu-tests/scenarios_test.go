package qemutests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/qemu-tests/board"
)

// Deadlines are generous: TCG on a loaded 2-core machine.
const (
	bootTimeout  = 6 * time.Minute
	stateTimeout = 2 * time.Minute
)

func sensorsPath(b *board.Board) string {
	return "/redfish/v1/Chassis/" + b.Config().Board.ID + "/Sensors"
}

func ok(status int, _ []byte) bool { return status == http.StatusOK }

// The board boots, boardd reads its sensors in band (KCS) and answers
// Redfish through the port forward with every configured sensor.
func TestBootToHealthy(t *testing.T) {
	b := sharedBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	want := 0
	for _, s := range b.Config().Sensors {
		if s.Sim != nil {
			want++
		}
	}
	body, err := b.WaitRedfish(ctx, sensorsPath(b), func(status int, body []byte) bool {
		if status != http.StatusOK {
			return false
		}
		var c struct {
			Count int `json:"Members@odata.count"`
		}
		return json.Unmarshal(body, &c) == nil && c.Count >= want
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Sensors: %.200s", body)
	// Healthy means the whole board: every sensor and the PCIe fabric as
	// the config describes it (a root port at the wrong address shows here).
	chassis := "/redfish/v1/Chassis/" + b.Config().Board.ID
	if body, err := b.WaitRedfish(ctx, chassis, func(status int, body []byte) bool {
		var c struct{ Status struct{ Health string } }
		return status == http.StatusOK && json.Unmarshal(body, &c) == nil && c.Status.Health == "OK"
	}); err != nil {
		t.Fatalf("board never healthy: %v (%.400s)", err, body)
	}
	if _, err := b.WaitSerial(ctx, 0, "transport=kcs"); err != nil {
		t.Fatalf("boardd did not use the in-band KCS interface: %v", err)
	}
	resp, err := board.HTTPClient().Get(b.MetricsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(m), "# TYPE") {
		t.Fatalf("metrics: HTTP %d %.200s", resp.StatusCode, m)
	}
	// Unauthenticated Redfish reads of the chassis are refused.
	r2, err := board.HTTPClient().Get(b.RedfishURL() + sensorsPath(b))
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated GET: HTTP %d, want 401", r2.StatusCode)
	}
}

// waitWorkloads polls the workload list every 250 ms until pred accepts it
// and returns when it did.
func waitWorkloads(ctx context.Context, t *testing.T, b *board.Board, what string, pred func(map[string]string) bool) time.Time {
	t.Helper()
	var last string
	for {
		m, err := b.Workloads(ctx)
		if err == nil && pred(m) {
			return time.Now()
		}
		last = fmt.Sprintf("%v %v", m, err)
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v (last: %s)", what, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// The board config's workloads run on the board under the image's
// containerd: demo (sheddable) and sentinel (critical) reach running and
// demo's log shows its heartbeat. A PSU failure raised at the BMC pauses
// demo while sentinel runs on; once the PSU is healthy again demo resumes
// after the policy's hold.
func TestWorkloadsOnBoard(t *testing.T) {
	b := sharedBoard(t)
	if len(b.Config().Workloads) == 0 {
		t.Skip("the board config has no workloads")
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	t0 := time.Now()
	waitWorkloads(ctx, t, b, "demo and sentinel running", func(m map[string]string) bool {
		return m["demo"] == "running" && m["sentinel"] == "running"
	})
	t.Logf("demo and sentinel running (%v after the test started)", time.Since(t0).Round(time.Second))
	logs, err := b.WaitRedfish(ctx, "/podos/v1/workloads/demo/logs?tail=20", func(status int, body []byte) bool {
		return status == http.StatusOK && bytes.Count(body, []byte("heartbeat")) >= 2
	})
	if err != nil {
		t.Fatalf("demo's log: %v", err)
	}
	t.Logf("demo's log: %.300s", logs)

	// Offset 0 presence detected, offset 1 failure detected.
	injected := time.Now()
	if err := b.InjectFault(ctx, "PSU_STATUS", 0x0003); err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if restored {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		if err := b.InjectFault(ctx, "PSU_STATUS", 0x0001); err != nil {
			t.Errorf("restore PSU_STATUS: %v", err)
		}
	})
	sctx, scancel := context.WithTimeout(ctx, stateTimeout)
	defer scancel()
	paused := waitWorkloads(sctx, t, b, "demo paused, sentinel running", func(m map[string]string) bool {
		if m["sentinel"] != "" && m["sentinel"] != "running" {
			t.Errorf("sentinel (critical) is %s during the PSU fault", m["sentinel"])
		}
		return m["demo"] == "paused"
	})
	t.Logf("PSU fault injected at the BMC -> demo paused (seen through the API): %v", paused.Sub(injected).Round(100*time.Millisecond))
	if m, err := b.Workloads(sctx); err != nil || m["sentinel"] != "running" {
		t.Fatalf("sentinel during the PSU fault: %v %v", m, err)
	}

	cleared := time.Now()
	if err := b.InjectFault(ctx, "PSU_STATUS", 0x0001); err != nil {
		t.Fatal(err)
	}
	restored = true
	hold := b.Config().Policy.Hold.Duration
	rctx, rcancel := context.WithTimeout(ctx, stateTimeout+hold)
	defer rcancel()
	resumed := waitWorkloads(rctx, t, b, "demo running again", func(m map[string]string) bool {
		return m["demo"] == "running" && m["sentinel"] == "running"
	})
	after := resumed.Sub(cleared)
	t.Logf("PSU fault cleared -> demo running again: %v (policy hold %v)", after.Round(100*time.Millisecond), hold)
	if after < hold-time.Second {
		t.Errorf("demo resumed %v after the PSU fault cleared, before the %v hold", after, hold)
	}
}

// sensorHealth returns the Redfish Status.Health of the named sensor.
func sensorHealth(ctx context.Context, b *board.Board, name string) (string, error) {
	status, body, err := b.Get(ctx, sensorsPath(b))
	if err != nil || status != http.StatusOK {
		return "", fmt.Errorf("sensors: HTTP %d %v", status, err)
	}
	var c struct {
		Members []struct {
			ID string `json:"@odata.id"`
		} `json:"Members"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return "", err
	}
	for _, m := range c.Members {
		status, body, err := b.Get(ctx, m.ID)
		if err != nil || status != http.StatusOK {
			continue
		}
		var s struct {
			ID     string `json:"Id"`
			Name   string `json:"Name"`
			Status struct {
				Health string `json:"Health"`
			} `json:"Status"`
		}
		if json.Unmarshal(body, &s) != nil {
			continue
		}
		if strings.EqualFold(s.Name, name) || strings.EqualFold(s.ID, name) || strings.Contains(strings.ToUpper(m.ID), strings.ToUpper(name)) {
			return s.Status.Health, nil
		}
	}
	return "", fmt.Errorf("no sensor %s in %s", name, sensorsPath(b))
}

func waitHealth(ctx context.Context, t *testing.T, b *board.Board, sensor, want string) {
	t.Helper()
	var last string
	for {
		h, err := sensorHealth(ctx, b, sensor)
		if err == nil && h == want {
			return
		}
		last = fmt.Sprintf("%q %v", h, err)
		select {
		case <-ctx.Done():
			t.Fatalf("%s never became %s (last: %s)", sensor, want, last)
		case <-time.After(time.Second):
		}
	}
}

// A PSU failure raised at the BMC is Critical on Redfish and is in the
// BMC's SEL as read over IPMI LAN.
func TestPSUFault(t *testing.T) {
	b := sharedBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := b.WaitRedfish(ctx, sensorsPath(b), ok); err != nil {
		t.Fatal(err)
	}
	waitHealth(ctx, t, b, "PSU_STATUS", "OK")
	// Offset 0 presence detected, offset 1 failure detected.
	if err := b.InjectFault(ctx, "PSU_STATUS", 0x0003); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
		defer cancel()
		if err := b.InjectFault(ctx, "PSU_STATUS", 0x0001); err != nil {
			t.Errorf("restore PSU_STATUS: %v", err)
			return
		}
		waitHealth(ctx, t, b, "PSU_STATUS", "OK")
	})
	sctx, scancel := context.WithTimeout(ctx, stateTimeout)
	defer scancel()
	waitHealth(sctx, t, b, "PSU_STATUS", "Critical")
	var sel string
	for {
		out, err := b.IPMITool(sctx, "sel", "list")
		if err == nil && strings.Contains(out, "Power Supply") && strings.Contains(strings.ToLower(out), "failure detected") {
			sel = out
			break
		}
		select {
		case <-sctx.Done():
			t.Fatalf("no PSU failure in the BMC's SEL: %v\n%s", err, out)
		case <-time.After(2 * time.Second):
		}
	}
	t.Logf("SEL:\n%s", sel)
}

var bdfRE = regexp.MustCompile(`0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]`)

var pidRE = regexp.MustCompile(`BOARDD_PID=(\d+)`)

func boarddPid(ctx context.Context, b *board.Board) (int, error) {
	out, err := b.SerialRun(ctx, "echo BOARDD_PID=$(cat /run/podos/boardd.pid)")
	if err != nil {
		return 0, err
	}
	if m := pidRE.FindStringSubmatch(out); m != nil {
		return strconv.Atoi(m[1])
	}
	return 0, fmt.Errorf("no boardd pid on the serial console: %q", out)
}

// boardd killed inside the board (SIGKILL from the serial break-glass
// shell) is restarted by podinit and serves again.
func TestBoarddRestartedAfterKill(t *testing.T) {
	b := sharedBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := b.WaitRedfish(ctx, "/redfish/v1/", ok); err != nil {
		t.Fatal(err)
	}
	pid, err := boarddPid(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	off := b.SerialOffset()
	if _, err := b.SerialRun(ctx, fmt.Sprintf("kill -9 %d", pid)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitSerial(ctx, off, "service=boardd err=\"signal: killed\""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitSerial(ctx, off, "service started"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitRedfish(ctx, "/redfish/v1/", ok); err != nil {
		t.Fatal(err)
	}
	npid, err := boarddPid(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if npid == pid {
		t.Fatalf("boardd pid %d unchanged after kill", pid)
	}
}

// boardd hung (SIGSTOP) stops petting the hardware watchdog; the i6300esb
// resets the board, which boots again to a healthy boardd.
func TestHungBoarddWatchdogReset(t *testing.T) {
	b := sharedBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := b.WaitRedfish(ctx, "/redfish/v1/", ok); err != nil {
		t.Fatal(err)
	}
	// podinit passes --watchdog only to a boardd that has the flag (it
	// logs the command line); until boardd has it there is nothing to test.
	if data, _ := os.ReadFile(b.SerialLog()); !bytes.Contains(data, []byte("--watchdog /dev/")) {
		t.Skip("boardd has no --watchdog flag yet: podinit did not hand it the hardware watchdog")
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	if _, err := b.WaitSerial(wctx, 0, "watchdog armed"); err != nil {
		t.Fatalf("boardd never armed the hardware watchdog: %v", err)
	}
	pid, err := boarddPid(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	off := b.SerialOffset()
	qemuPid := b.QEMUPid()
	if _, err := b.SerialRun(ctx, fmt.Sprintf("kill -19 %d", pid)); err != nil {
		t.Fatal(err)
	}
	// The reset reboots the guest inside the same QEMU.
	if _, err := b.WaitSerial(ctx, off, "Welcome to u-root"); err != nil {
		t.Fatalf("no reboot after boardd hung: %v", err)
	}
	if got := b.QEMUPid(); got != qemuPid {
		t.Fatalf("QEMU pid %d -> %d: the board was power-cycled, not reset", qemuPid, got)
	}
	if _, err := b.WaitRedfish(ctx, sensorsPath(b), ok); err != nil {
		t.Fatal(err)
	}
}

// `ipmitool chassis power off` then `power on` over IPMI LAN stops the
// emulated board and boots it again.
func TestPowerOffOn(t *testing.T) {
	b := sharedBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := b.WaitRedfish(ctx, "/redfish/v1/", ok); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Power(ctx, "off"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitPower(ctx, false); err != nil {
		t.Fatal(err)
	}
	if out, err := b.Power(ctx, "status"); err != nil || !strings.Contains(out, "off") {
		t.Fatalf("power status after off: %q %v", out, err)
	}
	if status, _, err := b.Get(ctx, "/redfish/v1/"); err == nil {
		t.Fatalf("Redfish answered HTTP %d with the board off", status)
	}
	off := b.SerialOffset()
	if _, err := b.Power(ctx, "on"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitPower(ctx, true); err != nil {
		t.Fatal(err)
	}
	if out, err := b.Power(ctx, "status"); err != nil || !strings.Contains(out, "on") {
		t.Fatalf("power status after on: %q %v", out, err)
	}
	if _, err := b.WaitSerial(ctx, off, "Welcome to u-root"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitRedfish(ctx, sensorsPath(b), ok); err != nil {
		t.Fatal(err)
	}
}

// The harness's QMP helpers work on the board: HMP shows the board's
// devices, and a NIC hot-added on the free downstream port is found by the
// guest and removed again (DEVICE_DELETED).
func TestHotplugAndMonitor(t *testing.T) {
	b := sharedBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()
	if _, err := b.WaitRedfish(ctx, "/redfish/v1/", ok); err != nil {
		t.Fatal(err)
	}
	pci, err := b.HMP(ctx, "info pci")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pci, "id \"wdt0\"") || !strings.Contains(pci, "id \"dn3\"") {
		t.Fatalf("info pci lacks the watchdog or the switch:\n%s", pci)
	}
	bound := func() (int, string, error) {
		out, err := b.SerialRun(ctx, "ls /sys/bus/pci/drivers/e1000e")
		return len(bdfRE.FindAllString(out, -1)), out, err
	}
	before, out, err := bound()
	if err != nil || before == 0 {
		t.Fatalf("the board's own e1000e is not bound: %v\n%s", err, out)
	}
	if err := b.HotplugAdd(ctx, "e1000e", "hp1", "dn3", nil); err != nil {
		t.Fatal(err)
	}
	// The guest enumerates it and binds its driver.
	for {
		n, o, err := bound()
		out = o
		if err == nil && n > before {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("hot-added NIC not bound in the guest: %v\n%s", err, out)
		case <-time.After(2 * time.Second):
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, stateTimeout)
	defer rcancel()
	if err := b.HotplugRemove(rctx, "hp1"); err != nil {
		t.Fatal(err)
	}
}
