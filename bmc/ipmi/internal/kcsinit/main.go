//go:build linux

// Command kcsinit is the /init of a throwaway QEMU guest that checks the
// in-band (KCS) client against ipmi_sim: it loads the IPMI modules, opens
// /dev/ipmi0 with bmc/ipmi, discovers and reads every sensor, writes and
// reads back a SEL entry, then polls while the host makes ipmi_sim
// generate events (each of which drops one KCS reply), and reports on the
// serial console in lines starting with "KCS ". Used by the bmc/ipmi QEMU
// test only.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmi"
)

func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, "KCS "+format+"\n", args...)
}

func main() {
	defer func() {
		if r := recover(); r != nil {
			say("FAIL panic %v", r)
		}
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}()
	if err := run(); err != nil {
		say("FAIL %v", err)
		return
	}
	say("DONE")
}

func run() error {
	_ = os.MkdirAll("/dev", 0o755)
	_ = os.MkdirAll("/proc", 0o755)
	_ = os.MkdirAll("/sys", 0o755)
	_ = unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	_ = unix.Mount("proc", "/proc", "proc", 0, "")
	_ = unix.Mount("sysfs", "/sys", "sysfs", 0, "")
	for _, m := range []string{"ipmi_msghandler", "ipmi_devintf", "ipmi_si"} {
		f, err := os.Open(filepath.Join("/lib/modules", m+".ko"))
		if err != nil {
			return err
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && err != unix.EEXIST {
			return fmt.Errorf("load %s: %w", m, err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat("/dev/ipmi0"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/dev/ipmi0 did not appear")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := context.Background()
	c, err := ipmi.OpenKCS(ctx, "/dev/ipmi0", ipmi.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	defs, err := c.Sensors(ctx)
	if err != nil {
		return fmt.Errorf("sensors: %w", err)
	}
	rs, err := c.Read(ctx, defs)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	var lines []string
	for i, d := range defs {
		lines = append(lines, fmt.Sprintf("SENSOR %s %s %s %s %v %g 0x%04x", d.ID, d.Name, d.Class, d.Unit, rs[i].Available, rs[i].Value, rs[i].State))
	}
	sort.Strings(lines)
	for _, l := range lines {
		say("%s", l)
	}
	id, err := c.AddSEL(ctx, bmc.SELEvent{SensorType: 0x08, SensorNumber: 0x30, EventType: 0x6f, EventData: [3]byte{1, 0xff, 0xff}})
	if err != nil {
		return fmt.Errorf("add sel: %w", err)
	}
	sel, err := c.SEL(ctx)
	if err != nil {
		return fmt.Errorf("sel: %w", err)
	}
	for _, e := range sel {
		if e.RecordID == id {
			say("SEL %s", e.Message)
		}
	}
	// The host now makes ipmi_sim generate events; every poll must
	// succeed.
	say("READY")
	start, polls, worst := time.Now(), 0, time.Duration(0)
	for time.Since(start) < 12*time.Second {
		t0 := time.Now()
		rs, err := c.Read(ctx, defs)
		if err != nil {
			return fmt.Errorf("poll %d: %w", polls, err)
		}
		for _, r := range rs {
			if !r.Available && !strings.Contains(r.Err, "scanning") {
				return fmt.Errorf("poll %d: %s unavailable: %s", polls, r.ID, r.Err)
			}
		}
		worst = max(worst, time.Since(t0))
		polls++
		time.Sleep(100 * time.Millisecond)
	}
	say("POLLS %d worst %v", polls, worst.Round(time.Millisecond))
	return nil
}
