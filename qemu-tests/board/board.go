// Package board assembles and drives an emulated podos board: QEMU (q35,
// TCG) booting the board's image, with the board's BMC emulated by
// OpenIPMI ipmi_sim (bmc/ipmisim) — in band over KCS to the guest, IPMI
// LAN to the host, and in charge of the board's power — a fresh swtpm per
// boot, an i6300esb watchdog, the PCIe switch topology of the board
// config's emulation.pcie, and virtio-net with restricted user networking
// forwarding Redfish (8443) and metrics (9102) to host ports.
//
// QEMU is launched by ipmi_sim's startcmd (a generated wrapper that starts
// swtpm and then execs QEMU), so `ipmitool chassis power on|off` works as
// on a real board. That is why this package has its own launcher rather
// than hugelgupf/vmtest's qemu package: vmtest owns the QEMU process and
// its console pipe, while here the BMC owns the process and the console
// is a socket chardev with a log file.
package board

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"podos.dev/podos/bmc/ipmisim"
	boardconfig "podos.dev/podos/board-configs"
)

// AdminUser is boardd's first administrator account.
const AdminUser = "admin"

// Tools are the executables a board needs on the host.
var Tools = []string{"qemu-system-x86_64", "swtpm", "ipmi_sim", "sdrcomp", "ipmitool", "mkfs.ext4"}

// Options describe the board to start.
type Options struct {
	// ConfigPath is the board config (board-configs/<board>.yaml).
	ConfigPath string
	// ImageDir holds vmlinuz, initramfs.cpio.* and manifest.json
	// (out/<board>, from `make image`).
	ImageDir string
	// Dir is the run directory: generated files, disk, logs (created).
	Dir string
	// Host ports; 0 picks a free one.
	RedfishPort, MetricsPort, BMCPort int
	// AdminPassword for boardd's admin account (default: generated). It
	// is written to Dir/admin-password and onto the board's persistent
	// disk, as a provisioning step would.
	AdminPassword string
	// ExtraAppend is added to the kernel command line.
	ExtraAppend string
	// PowerOn powers the board on at once (default true via Start).
	NoPowerOn bool
	Logger    *slog.Logger
}

// Board is a running emulated board.
type Board struct {
	cfg      *boardconfig.Config
	opts     Options
	dir      string
	log      *slog.Logger
	sim      *ipmisim.Sim
	password string

	redfishPort, metricsPort int

	serialMu sync.Mutex
}

// Start generates the board and powers it on (unless NoPowerOn).
func Start(ctx context.Context, o Options) (*Board, error) {
	for _, tool := range Tools {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("board: %s not found (make deps): %w", tool, err)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := boardconfig.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	if cfg.Emulation == nil {
		return nil, fmt.Errorf("board: %s has no emulation section: not an emulated board", o.ConfigPath)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	imageDir, err := filepath.Abs(o.ImageDir)
	if err != nil {
		return nil, err
	}
	o.ImageDir = imageDir
	b := &Board{cfg: cfg, opts: o, dir: dir, log: o.Logger.With("component", "board")}
	if b.redfishPort, err = portOr(o.RedfishPort); err != nil {
		return nil, err
	}
	if b.metricsPort, err = portOr(o.MetricsPort); err != nil {
		return nil, err
	}
	b.password = o.AdminPassword
	if b.password == "" {
		var raw [18]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, err
		}
		b.password = base64.RawURLEncoding.EncodeToString(raw[:])
	}
	if err := os.WriteFile(b.PasswordFile(), []byte(b.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := b.makeDisk(ctx); err != nil {
		return nil, err
	}
	serialPort, err := ipmisim.FreeTCPPort()
	if err != nil {
		return nil, err
	}
	qemuArgs, err := b.qemuArgs(serialPort)
	if err != nil {
		return nil, err
	}
	if err := b.writeWrapper(qemuArgs); err != nil {
		return nil, err
	}
	b.sim, err = ipmisim.Start(ctx, nil, cfg, ipmisim.Options{
		Dir:        filepath.Join(dir, "bmc"),
		LANPort:    o.BMCPort,
		SerialPort: serialPort,
		StartCmd:   filepath.Join(dir, "board.sh"),
		StartNow:   !o.NoPowerOn,
		Logger:     o.Logger,
	})
	if err != nil {
		return nil, err
	}
	b.log.Info("board assembled", "dir", dir, "redfish", b.RedfishURL(), "metrics", b.MetricsURL(), "bmc", b.BMCAddr())
	return b, nil
}

func portOr(p int) (int, error) {
	if p != 0 {
		return p, nil
	}
	return ipmisim.FreeTCPPort()
}

// makeDisk creates the persistent disk (ext4, formatted host-side, as a
// provisioning step would) with the admin password on it.
func (b *Board) makeDisk(ctx context.Context) error {
	mb := b.cfg.Emulation.DiskMB
	if mb <= 0 {
		mb = 64
	}
	stage := filepath.Join(b.dir, "disk-content")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, "admin-password"), []byte(b.password+"\n"), 0o600); err != nil {
		return err
	}
	disk := b.diskPath()
	if err := os.Truncate(disk, 0); err != nil && !os.IsNotExist(err) {
		return err
	}
	f, err := os.Create(disk)
	if err != nil {
		return err
	}
	if err := f.Truncate(int64(mb) << 20); err != nil {
		f.Close()
		return err
	}
	f.Close()
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", "podos-state", "-d", stage, disk).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w: %s", disk, err, out)
	}
	return nil
}

func (b *Board) diskPath() string { return filepath.Join(b.dir, "disk.img") }

func (b *Board) image() (string, error) {
	m, err := os.ReadFile(filepath.Join(b.opts.ImageDir, "manifest.json"))
	if err != nil {
		return "", fmt.Errorf("board image: %w (run make image)", err)
	}
	var man struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(m, &man); err != nil {
		return "", fmt.Errorf("board image manifest: %w", err)
	}
	return filepath.Join(b.opts.ImageDir, man.Image), nil
}

// qemuArgs is QEMU's command line for the board (without the binary).
func (b *Board) qemuArgs(serialPort int) ([]string, error) {
	img, err := b.image()
	if err != nil {
		return nil, err
	}
	em := b.cfg.Emulation
	mem, cpus := em.MemoryMB, em.CPUs
	if mem <= 0 {
		mem = 1024
	}
	if cpus <= 0 {
		cpus = 1
	}
	cmdline := strings.TrimSpace(b.cfg.Boot.Cmdline + " " + b.opts.ExtraAppend)
	if cmdline == "" {
		cmdline = "console=ttyS0 panic=-1 cgroup_no_v1=all"
	}
	a := []string{
		"-name", "podos-" + b.cfg.Board.ID,
		"-machine", "q35", "-accel", "tcg", "-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		// -cpu max gives the guest RDRAND under TCG: the kernel trusts it
		// and its CRNG is ready at once. With qemu64 getrandom() can block
		// for minutes early in boot (seen: DHCP and TLS stalled).
		"-cpu", "max",
		"-display", "none", "-vga", "none", "-monitor", "none",
		"-kernel", filepath.Join(b.opts.ImageDir, "vmlinuz"), "-initrd", img, "-append", cmdline,
		"-chardev", "socket,id=ser0,path=" + b.serialSock() + ",server=on,wait=off,logfile=" + b.SerialLog() + ",logappend=on",
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + b.qmpSock() + ",server=on,wait=off",
		"-pidfile", b.pidFile(),
		// In-band BMC: KCS backed by ipmi_sim's VM serial protocol.
		"-chardev", fmt.Sprintf("socket,id=ipmi0,host=127.0.0.1,port=%d,reconnect=10", serialPort),
		"-device", "ipmi-bmc-extern,id=bmc0,chardev=ipmi0", "-device", "isa-ipmi-kcs,bmc=bmc0",
		// TPM: a fresh swtpm per boot (started by the wrapper).
		"-chardev", "socket,id=chrtpm,path=" + b.tpmSock(), "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-crb,tpmdev=tpm0",
		// Root-bus slots are pinned so that the board's PCIe topology gets
		// the addresses its config expects (the first root port at
		// 00:03.0, as in EMULATED-BOARD.md).
		"-device", "i6300esb,id=wdt0,addr=0x2",
	}
	// Management network (no outside access, two ports forwarded) and
	// an entropy source, at fixed slots after the board's devices.
	tail := []string{
		"-netdev", fmt.Sprintf("user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:%d-:8443,hostfwd=tcp:127.0.0.1:%d-:9102", b.redfishPort, b.metricsPort),
		"-device", "virtio-net-pci,netdev=mgmt,id=mgmt0,addr=0x10",
		"-device", "virtio-rng-pci,id=rng0,addr=0x11",
	}
	disk := false
	for _, d := range em.PCIe {
		dev := d.Driver + ",id=" + d.ID
		if d.Bus != "" {
			dev += ",bus=" + d.Bus
		}
		props := d.Props
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			dev += "," + k + "=" + props[k]
		}
		if (d.Driver == "virtio-blk-pci" || d.Driver == "nvme") && props["drive"] == "" && !disk {
			// The first block device is the persistent disk.
			a = append(a, "-drive", "if=none,id=drv-"+d.ID+",file="+b.diskPath()+",format=raw")
			dev += ",drive=drv-" + d.ID
			if d.Driver == "nvme" && props["serial"] == "" {
				dev += ",serial=" + d.ID
			}
			disk = true
		}
		a = append(a, "-device", dev)
	}
	return append(a, tail...), nil
}

func (b *Board) serialSock() string { return filepath.Join(b.dir, "serial.sock") }
func (b *Board) qmpSock() string    { return filepath.Join(b.dir, "qmp.sock") }
func (b *Board) tpmSock() string    { return filepath.Join(b.dir, "swtpm.sock") }
func (b *Board) pidFile() string    { return filepath.Join(b.dir, "qemu.pid") }

// SerialLog is the file the board's serial console is recorded to.
func (b *Board) SerialLog() string { return filepath.Join(b.dir, "serial.log") }

// writeWrapper writes ipmi_sim's startcmd: guard against a second board,
// start a fresh swtpm, exec QEMU. It runs with ipmi_sim's stdio and
// descriptors: it redirects its own.
func (b *Board) writeWrapper(qemuArgs []string) error {
	q := make([]string, len(qemuArgs))
	for i, a := range qemuArgs {
		q[i] = shellQuote(a)
	}
	script := fmt.Sprintf(`#!/bin/sh
# Generated by qemu-tests/board: ipmi_sim's power-on command.
cd %[1]s || exit 1
exec >>%[1]s/qemu.log 2>&1 </dev/null
if [ -s qemu.pid ] && kill -0 "$(cat qemu.pid)" 2>/dev/null; then
  echo "board.sh: QEMU $(cat qemu.pid) already runs this board"; exit 1
fi
rm -f %[2]s
mkdir -p tpm
swtpm socket --tpm2 --tpmstate dir=%[1]s/tpm --ctrl type=unixio,path=%[2]s --terminate &
i=0; while [ ! -S %[2]s ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
echo "board.sh: power on $(date -u +%%FT%%TZ)"
exec qemu-system-x86_64 %[3]s
`, b.dir, b.tpmSock(), strings.Join(q, " "))
	return os.WriteFile(filepath.Join(b.dir, "board.sh"), []byte(script), 0o755)
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=.,:/+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Config is the board's config.
func (b *Board) Config() *boardconfig.Config { return b.cfg }

// Dir is the run directory.
func (b *Board) Dir() string { return b.dir }

// BMC is the board's emulated BMC.
func (b *Board) BMC() *ipmisim.Sim { return b.sim }

// RedfishURL is boardd's Redfish service through the port forward.
func (b *Board) RedfishURL() string { return fmt.Sprintf("https://127.0.0.1:%d", b.redfishPort) }

// MetricsURL is boardd's Prometheus endpoint through the port forward.
func (b *Board) MetricsURL() string { return fmt.Sprintf("http://127.0.0.1:%d", b.metricsPort) }

// BMCAddr is the BMC's IPMI LAN address (UDP).
func (b *Board) BMCAddr() string { return b.sim.LANAddr() }

// PasswordFile holds boardd's admin password.
func (b *Board) PasswordFile() string { return filepath.Join(b.dir, "admin-password") }

// Password is boardd's admin password.
func (b *Board) Password() string { return b.password }

// QEMUPid returns the running QEMU's pid, or 0.
func (b *Board) QEMUPid() int {
	data, err := os.ReadFile(b.pidFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// Stop powers the board off hard and stops the BMC: everything Start
// started, and nothing else.
func (b *Board) Stop() {
	if pid := b.QEMUPid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if b.sim != nil {
		b.sim.Stop()
	}
}

// IPMITool runs ipmitool against the BMC over IPMI LAN (lanplus, cipher
// suite 3).
func (b *Board) IPMITool(ctx context.Context, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(b.BMCAddr())
	base := []string{"-I", "lanplus", "-C", "3", "-H", host, "-p", port, "-U", ipmisim.User, "-P", ipmisim.Password}
	cmd := exec.CommandContext(ctx, "ipmitool", append(base, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ipmitool %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Power runs `ipmitool chassis power <op>` (on, off, cycle, reset, status).
func (b *Board) Power(ctx context.Context, op string) (string, error) {
	return b.IPMITool(ctx, "chassis", "power", op)
}

// InjectFault sets an emulated sensor's raw value at the BMC: a reading
// for a threshold sensor, a state bitmask for a discrete one.
func (b *Board) InjectFault(ctx context.Context, sensor string, raw int) error {
	for _, s := range b.cfg.Sensors {
		if s.Name != sensor || s.Sim == nil {
			continue
		}
		if s.Sim.EventType == 0x01 {
			return b.sim.Set(ctx, sensor, raw)
		}
		if raw < 0 || raw > 0x7fff {
			return fmt.Errorf("board: discrete state mask %d out of range", raw)
		}
		return b.sim.SetDiscrete(ctx, sensor, uint16(raw))
	}
	return fmt.Errorf("board: no emulated sensor %q in the board config", sensor)
}

// QMP runs one QMP command.
func (b *Board) QMP(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	q, err := dialQMP(ctx, b.qmpSock())
	if err != nil {
		return nil, err
	}
	defer q.Close()
	return q.do(cmd, args)
}

// HMP runs a human monitor command through QMP and returns its output.
func (b *Board) HMP(ctx context.Context, cmd string) (string, error) {
	r, err := b.QMP(ctx, "human-monitor-command", map[string]any{"command-line": cmd})
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", fmt.Errorf("hmp %q: %w", cmd, err)
	}
	return s, nil
}

// HotplugAdd adds a device (device_add) on a hotplug-capable bus.
func (b *Board) HotplugAdd(ctx context.Context, driver, id, bus string, props map[string]any) error {
	args := map[string]any{"driver": driver, "id": id, "bus": bus}
	for k, v := range props {
		args[k] = v
	}
	_, err := b.QMP(ctx, "device_add", args)
	return err
}

// HotplugRemove asks for a device's removal (device_del) and waits until
// the guest has released it (DEVICE_DELETED).
func (b *Board) HotplugRemove(ctx context.Context, id string) error {
	q, err := dialQMP(ctx, b.qmpSock())
	if err != nil {
		return err
	}
	defer q.Close()
	if _, err := q.do("device_del", map[string]any{"id": id}); err != nil {
		return err
	}
	return q.waitEvent(func(e qmpEvent) bool {
		if e.Event != "DEVICE_DELETED" {
			return false
		}
		var d struct {
			Device string `json:"device"`
		}
		return json.Unmarshal(e.Data, &d) == nil && d.Device == id
	})
}

// HTTPClient trusts boardd's self-signed certificate: the emulated board
// has no PKI; what is tested is the service, not the certificate chain.
func HTTPClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // see comment
	}
}

// Get does an authenticated GET on boardd's Redfish service.
func (b *Board) Get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.RedfishURL()+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(AdminUser, b.password)
	resp, err := HTTPClient().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return resp.StatusCode, body, err
}

// WaitRedfish polls GET path until pred accepts the answer or ctx ends.
// A nil pred waits for a 200.
func (b *Board) WaitRedfish(ctx context.Context, path string, pred func(status int, body []byte) bool) ([]byte, error) {
	if pred == nil {
		pred = func(status int, _ []byte) bool { return status == http.StatusOK }
	}
	var last string
	for {
		status, body, err := b.Get(ctx, path)
		if err == nil && pred(status, body) {
			return body, nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("HTTP %d: %.300s", status, bytes.TrimSpace(body))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w (last: %s)", path, ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// SerialOffset is the current end of the serial log: pass it to
// WaitSerial to match only output that comes after.
func (b *Board) SerialOffset() int64 {
	st, err := os.Stat(b.SerialLog())
	if err != nil {
		return 0
	}
	return st.Size()
}

// WaitSerial waits until the serial log, from offset on, contains s, and
// returns the offset just past the match.
func (b *Board) WaitSerial(ctx context.Context, offset int64, s string) (int64, error) {
	for {
		data, _ := os.ReadFile(b.SerialLog())
		if int64(len(data)) > offset {
			if i := bytes.Index(data[offset:], []byte(s)); i >= 0 {
				return offset + int64(i+len(s)), nil
			}
		}
		select {
		case <-ctx.Done():
			return offset, fmt.Errorf("waiting for %q on the serial console: %w", s, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SerialRun types a command line into the break-glass shell on the serial
// console, waits until it has run, and returns what the console printed
// meanwhile (the echoed line included). The end marker is computed by the
// shell ($((...))), so the echo of the typed line never matches it.
func (b *Board) SerialRun(ctx context.Context, line string) (string, error) {
	b.serialMu.Lock()
	defer b.serialMu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", b.serialSock())
	if err != nil {
		return "", fmt.Errorf("serial console: %w", err)
	}
	defer c.Close()
	go io.Copy(io.Discard, c) // the log file records the output
	n := time.Now().UnixNano() % 1_000_000_000
	marker := fmt.Sprintf("__END_%d__", n+1)
	off := b.SerialOffset()
	if _, err := fmt.Fprintf(c, "%s; echo __END_$((%d+1))__\n", line, n); err != nil {
		return "", err
	}
	end, err := b.WaitSerial(ctx, off, marker)
	if err != nil {
		return "", err
	}
	data, _ := os.ReadFile(b.SerialLog())
	return string(data[off:end]), nil
}

// ErrNotRunning is returned when QEMU is not running.
var ErrNotRunning = errNotRunning

// WaitPower waits until QEMU runs (on) or not (off).
func (b *Board) WaitPower(ctx context.Context, on bool) error {
	for {
		if (b.QEMUPid() != 0) == on {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for power %v: %w", map[bool]string{true: "on", false: "off"}[on], ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Workloads returns each workload's state (running, paused...) from
// boardd's GET /podos/v1/workloads, served on the Redfish listener.
func (b *Board) Workloads(ctx context.Context) (map[string]string, error) {
	status, body, err := b.Get(ctx, "/podos/v1/workloads")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /podos/v1/workloads: HTTP %d %.200s", status, body)
	}
	var l struct {
		Workloads []struct {
			Name  string `json:"name"`
			State string `json:"state"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("GET /podos/v1/workloads: %w", err)
	}
	m := map[string]string{}
	for _, w := range l.Workloads {
		m[w.Name] = w.State
	}
	return m, nil
}

// WaitWorkloadsRunning polls until every workload of the board config is
// running, or ctx ends.
func (b *Board) WaitWorkloadsRunning(ctx context.Context) error {
	var last string
	for {
		m, err := b.Workloads(ctx)
		all := err == nil
		for _, w := range b.cfg.Workloads {
			if all && m[w.Name] != "running" {
				all = false
			}
		}
		if all {
			return nil
		}
		last = fmt.Sprintf("%v %v", m, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the workloads to run: %w (last: %s)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
