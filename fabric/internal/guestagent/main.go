// Command guestagent is the /init of the tiny initramfs that fabric's QEMU
// tests boot. It mounts /proc, /sys and /dev, then, by the kernel command
// line's podos.fabric= word:
//
//   - dump: prints a sysfsfix capture of the PCI tree between the lines
//     "=== BEGIN SYSFS ===" and "=== END SYSFS ===" and powers off;
//   - watch: runs fabric.Source against /sys with the expected fabric in
//     /fabric.json and prints every update as one "FABRIC {json}" line;
//     it reads commands ("retrain BDF", "remove BDF", "rescan", "reset
//     BDF", "power SLOT on|off", "poweroff") from the console and answers
//     "OK cmd" or "ERR cmd: reason". With podos.fabric.uevents=off it
//     polls only (the benchmark's baseline).
//
// Everything goes to /dev/ttyS0, the board's serial console.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	mounts := []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
	}
	for _, m := range mounts {
		_ = os.MkdirAll(m.dst, 0o755)
		_ = unix.Mount(m.src, m.dst, m.fstype, 0, "")
	}
	con, err := os.OpenFile("/dev/ttyS0", os.O_RDWR, 0)
	if err != nil {
		con = os.Stdout
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	mode, uevents := "dump", true
	for _, w := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(w, "podos.fabric="); ok {
			mode = v
		}
		if w == "podos.fabric.uevents=off" {
			uevents = false
		}
	}
	switch mode {
	case "dump":
		err = dump(con)
	case "watch":
		err = watch(con, uevents)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintf(con, "AGENT ERROR: %v\n", err)
	}
	time.Sleep(200 * time.Millisecond)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
