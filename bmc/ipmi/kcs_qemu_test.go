package ipmi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"podos.dev/podos/bmc/ipmi"
	"podos.dev/podos/bmc/ipmisim"
	"podos.dev/podos/internal/testtool"
)

// TestKCSInQEMU runs the in-band client for real: a QEMU guest (TCG) with
// an isa-ipmi-kcs device wired to ipmi_sim's serial port boots the
// internal/kcsinit program as /init. The guest discovers and reads every
// sensor through /dev/ipmi0, writes and reads back the SEL, then polls
// while the host makes ipmi_sim generate events (ipmi_sim drops one KCS
// reply after each): no poll may fail.
func TestKCSInQEMU(t *testing.T) {
	t.Parallel()
	qemu := testtool.Require(t, "qemu-system-x86_64")
	testtool.Require(t, "cpio")
	kernels, _ := filepath.Glob("/boot/vmlinuz-*-amd64")
	if len(kernels) == 0 {
		testtool.Missing(t, "no /boot/vmlinuz-*-amd64 (apt package linux-image-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	modDir := filepath.Join("/lib/modules", strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-"), "kernel/drivers/char/ipmi")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// The initramfs: /init and the three IPMI modules.
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "lib", "modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(root, "init"), "./internal/kcsinit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build kcsinit: %v\n%s", err, out)
	}
	for _, m := range []string{"ipmi_msghandler", "ipmi_devintf", "ipmi_si"} {
		b, err := os.ReadFile(filepath.Join(modDir, m+".ko"))
		if err != nil {
			testtool.Missing(t, fmt.Sprintf("kernel module %s: %v", m, err))
		}
		if err := os.WriteFile(filepath.Join(root, "lib", "modules", m+".ko"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	pack := exec.CommandContext(ctx, "sh", "-c", "find . | cpio -o -H newc -R 0:0 > "+initrd)
	pack.Dir = root
	if out, err := pack.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}

	serial, err := ipmisim.FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := ipmisim.Start(ctx, t, ipmisim.TestBoard(), ipmisim.Options{SerialPort: serial})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, qemu, "-machine", "q35", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1",
		"-chardev", "socket,id=ipmi0,host=127.0.0.1,port="+fmt.Sprint(serial)+",reconnect=1",
		"-device", "ipmi-bmc-extern,id=bmc0,chardev=ipmi0", "-device", "isa-ipmi-kcs,bmc=bmc0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var console bytes.Buffer
	cmd.Stderr = &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	var mu sync.Mutex
	var lines []string
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			mu.Lock()
			console.WriteString(l + "\n")
			if strings.HasPrefix(l, "KCS ") {
				lines = append(lines, strings.TrimPrefix(l, "KCS "))
				if l == "KCS READY" {
					close(ready)
				}
			}
			mu.Unlock()
		}
	}()
	dump := func() string { mu.Lock(); defer mu.Unlock(); return console.String() }

	select {
	case <-ready:
	case <-done:
		t.Fatalf("guest ended before READY:\n%s", dump())
	case <-ctx.Done():
		t.Fatalf("guest not READY in time:\n%s", dump())
	}
	// Threshold crossings and discrete changes, each generating events.
	for i := range 8 {
		v := 200 + 20*(i%2) // PSU_IN_A: 9 A (UNC) <-> 10 A (UC)
		if err := sim.Set(ctx, "PSU_IN_A", v); err != nil {
			t.Fatal(err)
		}
		if err := sim.Set(ctx, "OIL_TEMP", 100+30*(i%2)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	if err := sim.SetDiscrete(ctx, "FUSE_BLADE1", 0x0002); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("guest did not finish:\n%s", dump())
	}
	mu.Lock()
	got := strings.Join(lines, "\n")
	mu.Unlock()
	for _, want := range []string{
		"SENSOR 20-0-01 PSU_IN_V voltage V true 24 ",
		"SENSOR 20-0-10 INLET_TEMP temperature Cel true -5 ",
		"SENSOR 20-0-31 FUSE_BLADE1 fuse  true 0 0x0001",
		"SEL Power Supply #0x30 | Failure detected | Asserted",
		"POLLS ",
		"DONE",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("guest report lacks %q", want)
		}
	}
	// The events really happened: ipmi_sim logged the threshold crossings.
	c, err := ipmi.DialLAN(ctx, ipmi.LANConfig{Host: "127.0.0.1", Port: sim.LANPort(), Username: ipmisim.User, Password: ipmisim.Password}, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sel, err := c.SEL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crossings := 0
	for _, e := range sel {
		if e.SensorNumber == 0x02 && e.EventType == 0x01 {
			crossings++
		}
	}
	if crossings < 4 {
		t.Errorf("only %d PSU_IN_A threshold events in the SEL: the guest was not exercised against events", crossings)
	}
	if strings.Contains(got, "FAIL") || t.Failed() {
		t.Errorf("guest report:\n%s\nconsole:\n%s", got, dump())
	}
	t.Logf("guest report:\n%s\n%d threshold events in the SEL", got, crossings)
}
