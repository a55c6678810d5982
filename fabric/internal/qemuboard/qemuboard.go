// Package qemuboard boots a minimal emulated board for fabric's tests: a
// q35 machine with the board config's PCIe switch, the host's generic
// kernel and an initramfs whose only file is fabric's guest agent as
// /init. It drives the machine through QMP (device_add, device_del, HMP
// pcie_aer_inject_error) and talks to the agent over the serial console.
//
// It is deliberately small: the full board (BMC, TPM, containerd) is
// qemu-tests' business; fabric needs only the PCIe hierarchy.
package qemuboard

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	boardconfig "podos.dev/podos/board-configs"
)

// Kernel returns the host's generic kernel image, or "" if none.
func Kernel() string {
	m, _ := filepath.Glob("/boot/vmlinuz-*-amd64")
	sort.Strings(m)
	for i := len(m) - 1; i >= 0; i-- {
		if !strings.Contains(m[i], "cloud") {
			return m[i]
		}
	}
	return ""
}

// BuildInitramfs builds the guest agent and writes an initramfs holding it
// as /init plus the given extra files (name -> content) to dir/initramfs.cpio.
func BuildInitramfs(ctx context.Context, dir string, extra map[string][]byte) (string, error) {
	bin := filepath.Join(dir, "guestagent")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "podos.dev/podos/fabric/internal/guestagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build guest agent: %w\n%s", err, out)
	}
	agent, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
		cpio.StaticFile("init", string(agent), 0o755),
	}
	names := make([]string, 0, len(extra))
	for n := range extra {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		recs = append(recs, cpio.StaticFile(n, string(extra[n]), 0o644))
	}
	out := filepath.Join(dir, "initramfs.cpio")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	w := cpio.Newc.Writer(f)
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		f.Close()
		return "", fmt.Errorf("write initramfs: %w", err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		f.Close()
		return "", err
	}
	return out, f.Close()
}

// Options configure a boot.
type Options struct {
	Dir       string // working dir (sockets, logs)
	Initramfs string
	Mode      string // agent mode: dump | watch
	PCIe      []boardconfig.SimPCIe
	// NativeHotplug turns off q35's ACPI hotplug so the kernel's pciehp
	// drives the switch's slots.
	NativeHotplug bool
	MemoryMB      int
	// Cmdline is appended to the kernel command line (e.g.
	// "podos.fabric.uevents=off": the agent then polls only).
	Cmdline string
}

// Board is a running QEMU.
type Board struct {
	cmd     *exec.Cmd
	qmp     *QMP
	serial  net.Conn
	lines   chan string
	done    chan struct{}
	logMu   sync.Mutex
	log     bytes.Buffer
	waitErr error
}

// Start boots the board and connects to its QMP and serial sockets.
func Start(ctx context.Context, o Options) (*Board, error) {
	kernel := Kernel()
	if kernel == "" {
		return nil, errors.New("no generic kernel in /boot")
	}
	if o.MemoryMB == 0 {
		o.MemoryMB = 256
	}
	qmpSock := filepath.Join(o.Dir, "qmp.sock")
	serSock := filepath.Join(o.Dir, "serial.sock")
	args := []string{
		"-machine", "q35", "-accel", "tcg", "-m", fmt.Sprint(o.MemoryMB), "-smp", "1",
		"-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
		"-kernel", kernel, "-initrd", o.Initramfs,
		"-append", strings.TrimSpace("console=ttyS0 quiet loglevel=3 panic=-1 podos.fabric=" + o.Mode + " " + o.Cmdline),
		"-chardev", "socket,id=ser0,path=" + serSock + ",server=on,wait=on",
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + qmpSock + ",server=on,wait=off",
	}
	// The full board has VGA at 00:01.0 and the watchdog at 00:02.0, so its
	// first root port is 00:03.0 (the board config's root_port): mirror it.
	args = append(args, "-device", "VGA,addr=01.0", "-device", "i6300esb,addr=02.0")
	if o.NativeHotplug {
		args = append(args, "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off")
	}
	for _, d := range o.PCIe {
		d, blk := withBackend(d)
		if blk != "" {
			args = append(args, "-blockdev", blk)
		}
		args = append(args, "-device", DeviceArg(d))
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.Dir = o.Dir
	logf, err := os.Create(filepath.Join(o.Dir, "qemu.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	b := &Board{cmd: cmd, lines: make(chan string, 4096), done: make(chan struct{})}
	go func() { b.waitErr = cmd.Wait(); logf.Close(); close(b.done) }()

	// QEMU waits for the serial client before it runs the guest.
	ser, err := dialRetry(ctx, serSock, b.done)
	if err != nil {
		b.Kill()
		return nil, fmt.Errorf("serial: %w", err)
	}
	b.serial = ser
	go b.readSerial()
	qc, err := dialRetry(ctx, qmpSock, b.done)
	if err != nil {
		b.Kill()
		return nil, fmt.Errorf("qmp: %w", err)
	}
	b.qmp, err = newQMP(qc)
	if err != nil {
		b.Kill()
		return nil, err
	}
	return b, nil
}

// withBackend gives a block device that names no drive a small null
// backend, so configs written for the full board (with a real disk) boot
// here too.
func withBackend(d boardconfig.SimPCIe) (boardconfig.SimPCIe, string) {
	switch d.Driver {
	case "virtio-blk-pci", "nvme":
	default:
		return d, ""
	}
	if _, ok := d.Props["drive"]; ok {
		return d, ""
	}
	props := map[string]string{}
	for k, v := range d.Props {
		props[k] = v
	}
	node := d.ID + "-blk"
	props["drive"] = node
	if d.Driver == "nvme" {
		if _, ok := props["serial"]; !ok {
			props["serial"] = d.ID
		}
	}
	d.Props = props
	return d, "driver=null-co,node-name=" + node + ",size=67108864"
}

// DeviceArg renders one SimPCIe as a -device argument.
func DeviceArg(d boardconfig.SimPCIe) string {
	parts := []string{d.Driver, "id=" + d.ID}
	if d.Bus != "" {
		parts = append(parts, "bus="+d.Bus)
	}
	keys := make([]string, 0, len(d.Props))
	for k := range d.Props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+d.Props[k])
	}
	return strings.Join(parts, ",")
}

func dialRetry(ctx context.Context, path string, done <-chan struct{}) (net.Conn, error) {
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: %w (last: %v)", path, ctx.Err(), err)
		case <-done:
			log, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "qemu.log"))
			return nil, fmt.Errorf("qemu exited before %s was up: %s", path, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *Board) readSerial() {
	sc := bufio.NewScanner(b.serial)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		b.logMu.Lock()
		if b.log.Len() < 4<<20 {
			b.log.WriteString(line + "\n")
		}
		b.logMu.Unlock()
		select {
		case b.lines <- line:
		default: // a reader that does not keep up loses lines, never blocks the guest
		}
	}
	close(b.lines)
}

// Lines returns the console's lines as they arrive.
func (b *Board) Lines() <-chan string { return b.lines }

// Console returns everything the console printed so far.
func (b *Board) Console() string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return b.log.String()
}

// Send writes one command line to the agent.
func (b *Board) Send(line string) error {
	_, err := b.serial.Write([]byte(line + "\n"))
	return err
}

// QMP returns the machine's QMP connection.
func (b *Board) QMP() *QMP { return b.qmp }

// Done is closed when QEMU exits.
func (b *Board) Done() <-chan struct{} { return b.done }

// Kill stops QEMU and waits for it.
func (b *Board) Kill() {
	if b.cmd.Process != nil {
		_ = b.cmd.Process.Kill()
	}
	<-b.done
	if b.serial != nil {
		b.serial.Close()
	}
	if b.qmp != nil {
		b.qmp.Close()
	}
}

// QMP is a minimal QEMU Machine Protocol client: one command at a time,
// events kept for WaitEvent. Hand-written: no QMP client is among the
// project's modules and the protocol is a few lines of JSON.
type QMP struct {
	conn   net.Conn
	mu     sync.Mutex // one command at a time
	resp   chan map[string]any
	evMu   sync.Mutex
	events []map[string]any
	evCh   chan struct{}
}

func newQMP(c net.Conn) (*QMP, error) {
	q := &QMP{conn: c, resp: make(chan map[string]any, 1), evCh: make(chan struct{})}
	dec := json.NewDecoder(c)
	var greet map[string]any
	if err := dec.Decode(&greet); err != nil {
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	go func() {
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				close(q.resp)
				return
			}
			if _, ok := m["event"]; ok {
				q.evMu.Lock()
				q.events = append(q.events, m)
				close(q.evCh)
				q.evCh = make(chan struct{})
				q.evMu.Unlock()
				continue
			}
			q.resp <- m
		}
	}()
	if _, err := q.Execute(context.Background(), "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

// Execute runs one QMP command and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, cmd string, args map[string]any) (any, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	select {
	case m, ok := <-q.resp:
		if !ok {
			return nil, fmt.Errorf("qmp %s: connection closed", cmd)
		}
		if e, ok := m["error"]; ok {
			return nil, fmt.Errorf("qmp %s: %v", cmd, e)
		}
		return m["return"], nil
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: %w", cmd, ctx.Err())
	}
}

// HMP runs a human monitor command and returns its output.
func (q *QMP) HMP(ctx context.Context, line string) (string, error) {
	r, err := q.Execute(ctx, "human-monitor-command", map[string]any{"command-line": line})
	if err != nil {
		return "", err
	}
	s, _ := r.(string)
	return s, nil
}

// WaitEvent waits for an event named name whose data matches match (may be nil).
func (q *QMP) WaitEvent(ctx context.Context, name string, match func(data map[string]any) bool) error {
	seen := 0
	for {
		q.evMu.Lock()
		evs := q.events[seen:]
		seen = len(q.events)
		ch := q.evCh
		q.evMu.Unlock()
		for _, e := range evs {
			if e["event"] != name {
				continue
			}
			d, _ := e["data"].(map[string]any)
			if match == nil || match(d) {
				return nil
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", name, ctx.Err())
		}
	}
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }
