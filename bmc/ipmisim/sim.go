// Package ipmisim runs a real OpenIPMI ipmi_sim BMC generated from a
// board config, for tests (bmc/ipmi, boardd, qemu-tests) and `make run`.
//
// Start writes, into Options.Dir:
//   - lan.conf (ipmi_lan(5)): one LAN channel on 127.0.0.1, user
//     admin/password, the emulation console, optionally the serial port
//     QEMU's ipmi-bmc-extern connects to and a power-control startcmd;
//   - board.emu (ipmi_sim_cmd(5)): the BMC, its SEL, and one sensor per
//     config sensor with a sim block, polled every 500 ms from
//     sensors/<nn>_<name>.val, with its thresholds and hysteresis;
//   - board.sdrs: the SDR repository source (an MC locator, a full record
//     per threshold sensor, a compact record per discrete one), compiled
//     with `sdrcomp -8` into state/ipmi_sim/podbmc/sdr.20.main;
//
// then starts `ipmi_sim -c lan.conf -f board.emu -s state -n` in its own
// session with SIGPIPE ignored (it dies of SIGPIPE when a console client
// leaves early) and waits until it answers.
package ipmisim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/internal/testtool"
)

// Credentials of the emulated BMC's administrator.
const (
	User     = "admin"
	Password = "password"
)

// Options configure a Sim. Zero ports are picked free at Start and kept
// across Restart.
type Options struct {
	// Dir holds the generated files, the state and the log
	// (default: t.TempDir(), or a new temporary directory without t).
	Dir string
	// LANPort is the IPMI LAN (RMCP+) UDP port on 127.0.0.1 (0 = pick).
	LANPort int
	// SerialPort, when non-zero, is the TCP port on 127.0.0.1 where
	// ipmi_sim serves the VM serial protocol: QEMU's ipmi-bmc-extern
	// chardev connects here and the guest sees a KCS interface.
	SerialPort int
	// ConsolePort is the emulation console's TCP port (0 = pick).
	ConsolePort int
	// StartCmd is ipmi_sim's power-on command (run as
	// /bin/sh -c "exec <StartCmd>"); empty means no power control.
	StartCmd string
	// StartNow powers on at start (StartCmd only).
	StartNow bool
	// PoweroffWait and KillWait are ipmi_sim's poweroff_wait and
	// kill_wait in seconds (defaults 15 and 5).
	PoweroffWait, KillWait int
	// Logger receives lifecycle messages.
	Logger *slog.Logger
}

// Sim is a running (or killed) ipmi_sim.
type Sim struct {
	opts    Options
	dir     string
	log     *slog.Logger
	cfgID   string
	lanPort int
	conPort int

	mu      sync.Mutex
	sensors map[string]*sensor
	list    []*sensor
	proc    *process
}

type process struct {
	pid  int
	done chan struct{}
	err  error
}

// Tools names the executables Start needs.
var Tools = []string{"ipmi_sim", "sdrcomp"}

// Start generates the BMC for cfg and starts it. With a non-nil t, the
// tools are required through testtool (skip, or fail under CI) and the
// Sim is stopped at the end of the test.
func Start(ctx context.Context, t testing.TB, cfg *boardconfig.Config, opts Options) (*Sim, error) {
	if t != nil {
		t.Helper()
		for _, tool := range Tools {
			testtool.Require(t, tool)
		}
	}
	for _, tool := range Tools {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("ipmisim: %s not found (apt package openipmi): %w", tool, err)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir := opts.Dir
	if dir == "" {
		if t != nil {
			dir = t.TempDir()
		} else {
			d, err := os.MkdirTemp("", "ipmisim-")
			if err != nil {
				return nil, err
			}
			dir = d
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Sim{opts: opts, dir: dir, log: opts.Logger.With("component", "ipmisim")}
	if t != nil {
		t.Cleanup(func() {
			s.Stop()
			if t.Failed() {
				if b, err := os.ReadFile(s.LogPath()); err == nil && len(b) > 0 {
					t.Logf("ipmi_sim log:\n%s", tail(b, 4000))
				}
			}
		})
	}
	// A port picked free may be taken by another test before ipmi_sim
	// binds it: then pick again.
	for attempt := 0; ; attempt++ {
		if s.lanPort = opts.LANPort; s.lanPort == 0 {
			if s.lanPort, err = freeUDPPort(); err != nil {
				return nil, err
			}
		}
		if s.conPort = opts.ConsolePort; s.conPort == 0 {
			if s.conPort, err = freeTCPPort(); err != nil {
				return nil, err
			}
		}
		if err := s.generate(ctx, cfg); err != nil {
			return nil, err
		}
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		picked := opts.LANPort == 0 || opts.ConsolePort == 0
		if !picked || attempt >= 2 || ctx.Err() != nil {
			return nil, err
		}
		s.log.Warn("ipmi_sim did not start, retrying on other ports", "err", err)
		s.Stop()
	}
}

// generate writes every file for cfg and compiles the SDR repository.
func (s *Sim) generate(ctx context.Context, cfg *boardconfig.Config) error {
	sensors, err := sensorsOf(cfg, s.dir)
	if err != nil {
		return err
	}
	stateDir := filepath.Join(s.dir, "state", "ipmi_sim", simName)
	for _, d := range []string{filepath.Join(s.dir, "sensors"), stateDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"lan.conf":   lanConf(s.opts, s.lanPort, s.conPort, s.opts.SerialPort),
		"board.emu":  emuFile(sensors),
		"board.sdrs": sdrText(cfg.Board.ID, sensors),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	byName := map[string]*sensor{}
	for _, sn := range sensors {
		if err := writeAtomic(sn.file, valueText(sn, int(sn.sim.Initial))); err != nil {
			return err
		}
		byName[sn.name] = sn
	}
	out, err := exec.CommandContext(ctx, "sdrcomp", "-8", "-o", filepath.Join(stateDir, "sdr.20.main"),
		filepath.Join(s.dir, "board.sdrs")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ipmisim: sdrcomp: %v: %s", err, bytes.TrimSpace(out))
	}
	s.mu.Lock()
	s.sensors, s.list, s.cfgID = byName, sensors, cfg.Board.ID
	s.mu.Unlock()
	return nil
}

func valueText(sn *sensor, raw int) string {
	if sn.threshold() {
		raw &= 0xff // a signed sensor's raw byte, e.g. -5 -> 251
	}
	return strconv.Itoa(raw) + "\n"
}

func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// start launches ipmi_sim and waits until its console answers.
func (s *Sim) start(ctx context.Context) error {
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var logStart int64
	if fi, err := logf.Stat(); err == nil {
		logStart = fi.Size()
	}
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	// The goroutine keeps its OS thread for the life of the process: the
	// child's parent-death signal fires when the thread that forked it
	// exits, not the process.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer logf.Close()
		cmd := exec.Command("bash", "-c", "trap '' PIPE; exec ipmi_sim -c lan.conf -f board.emu -s state -n")
		cmd.Dir = s.dir
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = procAttr()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("ipmisim: start ipmi_sim: %w", err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	s.log.Info("ipmi_sim started", "pid", p.pid, "lan", s.LANAddr(), "dir", s.dir)

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("ipmisim: ipmi_sim exited at start (%v): %s", p.err, s.startLog(logStart))
		case <-ctx.Done():
			s.Kill()
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", s.ConsoleAddr(), 200*time.Millisecond); err == nil {
			c.Close()
			return s.loadValues(ctx)
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("ipmisim: ipmi_sim console %s not up after 15s", s.ConsoleAddr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startLog returns what ipmi_sim printed since offset, on one line,
// without its per-sensor "Hysteresis:" chatter.
func (s *Sim) startLog(offset int64) string {
	b, err := os.ReadFile(s.LogPath())
	if err != nil || int64(len(b)) < offset {
		return "no log"
	}
	var keep []string
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "Hysteresis:") && !strings.HasPrefix(l, "IPMI Simulator version") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return "no output"
	}
	return tail([]byte(strings.Join(keep, "; ")), 500)
}

// loadValues sets every sensor to its polled file's value at once, so
// readings are right from the first request rather than after the first
// 500 ms poll. No events are generated.
func (s *Sim) loadValues(ctx context.Context) error {
	s.mu.Lock()
	list := s.list
	s.mu.Unlock()
	var cmds strings.Builder
	for _, sn := range list {
		b, err := os.ReadFile(sn.file)
		if err != nil {
			return err
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("ipmisim: %s: %w", sn.file, err)
		}
		if sn.threshold() {
			fmt.Fprintf(&cmds, "sensor_set_value 0x%02x 0 0x%02x %d 0\n", bmcAddr, sn.sim.Number, v&0xff)
			continue
		}
		for bit := 0; bit < 15; bit++ {
			fmt.Fprintf(&cmds, "sensor_set_bit 0x%02x 0 0x%02x %d %d 0\n", bmcAddr, sn.sim.Number, bit, (v>>bit)&1)
		}
	}
	_, err := s.Console(ctx, cmds.String())
	return err
}

// LANAddr is the IPMI LAN address, "127.0.0.1:port".
func (s *Sim) LANAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.lanPort)) }

// LANPort is the IPMI LAN UDP port.
func (s *Sim) LANPort() int { return s.lanPort }

// URL is the bmc dial URL of the LAN interface,
// "ipmi+lan://admin:password@127.0.0.1:port".
func (s *Sim) URL() string {
	return fmt.Sprintf("ipmi+lan://%s:%s@%s", User, Password, s.LANAddr())
}

// SerialAddr is where QEMU's ipmi-bmc-extern chardev connects ("" when
// Options.SerialPort is 0).
func (s *Sim) SerialAddr() string {
	if s.opts.SerialPort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.opts.SerialPort))
}

// ConsoleAddr is the emulation console's address.
func (s *Sim) ConsoleAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.conPort)) }

// Dir is the directory holding the generated files and the state.
func (s *Sim) Dir() string { return s.dir }

// LogPath is ipmi_sim's output.
func (s *Sim) LogPath() string { return filepath.Join(s.dir, "ipmi_sim.log") }

// Running reports whether ipmi_sim is running.
func (s *Sim) Running() bool {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill makes the BMC vanish: SIGKILL to ipmi_sim alone (a board it
// powered on keeps running, as with a real BMC crash).
func (s *Sim) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	<-p.done
}

// Pause stops ipmi_sim (SIGSTOP) until Resume: requests get no answer,
// then are answered late.
func (s *Sim) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a paused ipmi_sim.
func (s *Sim) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Sim) signal(sig syscall.Signal) error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil || !s.Running() {
		return errors.New("ipmisim: not running")
	}
	return syscall.Kill(p.pid, sig)
}

// Restart kills ipmi_sim if it runs and starts it again on the same
// ports, with the same state (SEL, SDR repository).
func (s *Sim) Restart(ctx context.Context) error {
	s.Kill()
	return s.start(ctx)
}

// Reconfigure regenerates the BMC from a new config (sensors added,
// removed or changed: a new SDR repository) and restarts it on the same
// ports. The SEL is kept.
func (s *Sim) Reconfigure(ctx context.Context, cfg *boardconfig.Config) error {
	s.Kill()
	if err := s.generate(ctx, cfg); err != nil {
		return err
	}
	return s.start(ctx)
}

// Stop ends ipmi_sim and everything in its session (a board started by
// StartCmd included).
func (s *Sim) Stop() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
	s.log.Info("ipmi_sim stopped")
}

func (s *Sim) lookup(name string) (*sensor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn, ok := s.sensors[name]
	if !ok {
		return nil, fmt.Errorf("ipmisim: no emulated sensor named %q", name)
	}
	return sn, nil
}

// Set sets a threshold sensor's raw reading: it rewrites the polled file
// (so the value stays) and sets it at once on the console, generating
// the threshold events a real sensor would. For a signed sensor, raw may
// be negative (-128..127).
func (s *Sim) Set(ctx context.Context, name string, raw int) error {
	sn, err := s.lookup(name)
	if err != nil {
		return err
	}
	if !sn.threshold() {
		return fmt.Errorf("ipmisim: %q is discrete: use SetDiscrete", name)
	}
	if raw < -128 || raw > 255 || (raw < 0 && !sn.sim.Signed) {
		return fmt.Errorf("ipmisim: raw value %d out of range for %q", raw, name)
	}
	if err := writeAtomic(sn.file, valueText(sn, raw)); err != nil {
		return err
	}
	_, err = s.Console(ctx, fmt.Sprintf("sensor_set_value 0x%02x 0 0x%02x %d 1", bmcAddr, sn.sim.Number, raw&0xff))
	return err
}

// SetDiscrete sets a discrete sensor's asserted states (bit n = offset n)
// by rewriting its polled file; ipmi_sim picks it up within its 500 ms
// poll and generates the assertion/deassertion events.
func (s *Sim) SetDiscrete(ctx context.Context, name string, mask uint16) error {
	sn, err := s.lookup(name)
	if err != nil {
		return err
	}
	if sn.threshold() {
		return fmt.Errorf("ipmisim: %q is a threshold sensor: use Set", name)
	}
	if mask > 0x7fff {
		return fmt.Errorf("ipmisim: discrete mask 0x%x has bit 15 set", mask)
	}
	return writeAtomic(sn.file, valueText(sn, int(mask)))
}

// Console runs emulation commands (ipmi_sim_cmd(5), one per line) on the
// console and returns their output.
func (s *Sim) Console(ctx context.Context, cmds string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.ConsoleAddr())
	if err != nil {
		return "", fmt.Errorf("ipmisim: console: %w", err)
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	r := bufio.NewReader(c)
	if _, err := readPrompt(r); err != nil {
		return "", fmt.Errorf("ipmisim: console prompt: %w", err)
	}
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(cmds), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
			return out.String(), fmt.Errorf("ipmisim: console write: %w", err)
		}
		got, err := readPrompt(r)
		out.WriteString(got)
		if err != nil {
			return out.String(), fmt.Errorf("ipmisim: console %q: %w", line, err)
		}
		if strings.Contains(got, "**") { // ipmi_sim's error marker
			return out.String(), fmt.Errorf("ipmisim: console %q: %s", line, strings.TrimSpace(got))
		}
	}
	return out.String(), nil
}

// readPrompt reads until the console prompt "> ".
func readPrompt(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			return b.String(), err
		}
		b.WriteByte(c)
		if strings.HasSuffix(b.String(), "> ") {
			return strings.TrimSuffix(b.String(), "> "), nil
		}
	}
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ipmisim: pick udp port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ipmisim: pick tcp port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeTCPPort returns a currently free TCP port on 127.0.0.1 (for
// Options.SerialPort).
func FreeTCPPort() (int, error) { return freeTCPPort() }

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
