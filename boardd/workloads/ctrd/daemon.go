// Package ctrd runs workloads on containerd: Daemon supervises a
// containerd child process with a generated config, and Runtime
// implements workloads.Runtime with the containerd client.
package ctrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DaemonConfig says where containerd's binaries and directories are.
type DaemonConfig struct {
	// BinDir holds containerd, containerd-shim-runc-v2 and runc; empty
	// means they are found in PATH.
	BinDir string
	// Dir holds containerd's root, state and config. Keep it short (the
	// socket path must fit in 108 bytes) and on tmpfs or a disk that can
	// hold overlayfs upper dirs.
	Dir string
	// Address is the socket; default <Dir>/containerd.sock.
	Address string
	// Output receives containerd's own log (default stderr).
	Output io.Writer
	// LogLevel is containerd's log level (default "warn").
	LogLevel string
	Logger   *slog.Logger
}

// Daemon supervises a containerd process: it starts it with a generated
// config and restarts it whenever it dies, until its context ends.
type Daemon struct {
	cfg DaemonConfig
	log *slog.Logger

	mu       sync.Mutex
	cmd      *exec.Cmd
	restarts int
	ready    chan struct{} // closed once the socket first answers
	up       bool
}

// NewDaemon checks cfg and returns a Daemon; Run starts it.
func NewDaemon(cfg DaemonConfig) (*Daemon, error) {
	if cfg.Dir == "" {
		return nil, errors.New("ctrd: no containerd dir")
	}
	if cfg.Address == "" {
		cfg.Address = filepath.Join(cfg.Dir, "containerd.sock")
	}
	if len(cfg.Address) > 100 {
		return nil, fmt.Errorf("ctrd: socket path %q is longer than 100 bytes (unix socket limit): use a shorter dir", cfg.Address)
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Daemon{cfg: cfg, log: cfg.Logger.With("component", "containerd"), ready: make(chan struct{})}, nil
}

// Address is containerd's socket.
func (d *Daemon) Address() string { return d.cfg.Address }

// RuncPath is the runc binary the shim must use.
func (d *Daemon) RuncPath() string { return d.bin("runc") }

func (d *Daemon) bin(name string) string {
	if d.cfg.BinDir != "" {
		return filepath.Join(d.cfg.BinDir, name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return name
}

// Config returns the generated containerd config (TOML, version 4).
// Hand-written text rather than containerd's config structs: it is a few
// keys, and containerd's own loader validates it at start.
func (d *Daemon) Config() string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "version = 4 # containerd 2.4's config version\n")
	fmt.Fprintf(&b, "root = %s\nstate = %s\n", q(filepath.Join(d.cfg.Dir, "root")), q(filepath.Join(d.cfg.Dir, "state")))
	fmt.Fprintf(&b, "imports = [] # never the host's /etc/containerd\n")
	// boardd drives containerd through its own client: no CRI, no
	// Kubernetes sandboxes, no snapshotters a board cannot use, nothing
	// written outside Dir.
	fmt.Fprintf(&b, "disabled_plugins = [%s]\n", strings.Join([]string{
		q("io.containerd.grpc.v1.cri"), q("io.containerd.cri.v1.images"), q("io.containerd.cri.v1.runtime"),
		q("io.containerd.podsandbox.controller.v1.podsandbox"),
		q("io.containerd.snapshotter.v1.btrfs"), q("io.containerd.snapshotter.v1.zfs"),
		q("io.containerd.snapshotter.v1.devmapper"), q("io.containerd.snapshotter.v1.blockfile"),
		q("io.containerd.snapshotter.v1.erofs"), q("io.containerd.differ.v1.erofs"),
		q("io.containerd.mount-handler.v1.erofs"),
		q("io.containerd.tracing.processor.v1.otlp"), q("io.containerd.internal.v1.tracing"),
		q("io.containerd.nri.v1.nri"), q("io.containerd.internal.v1.opt"),
	}, ", "))
	fmt.Fprintf(&b, "\n[debug]\n  level = %s\n", q(d.cfg.LogLevel))
	fmt.Fprintf(&b, "\n[plugins]\n")
	fmt.Fprintf(&b, "  [plugins.'io.containerd.server.v1.grpc']\n    address = %s\n", q(d.cfg.Address))
	fmt.Fprintf(&b, "  [plugins.'io.containerd.server.v1.ttrpc']\n    address = %s\n", q(d.cfg.Address+".ttrpc"))
	fmt.Fprintf(&b, "  [plugins.'io.containerd.server.v1.debug']\n    address = ''\n")
	fmt.Fprintf(&b, "  [plugins.'io.containerd.server.v1.metrics']\n    address = ''\n")
	return b.String()
}

// Run starts containerd and restarts it when it dies (backing off from
// 100 ms to 5 s) until ctx ends, then stops it (SIGTERM, SIGKILL after
// 5 s). Running tasks survive a containerd restart: their shims hold them.
func (d *Daemon) Run(ctx context.Context) error {
	for _, sub := range []string{"root", "state"} {
		if err := os.MkdirAll(filepath.Join(d.cfg.Dir, sub), 0o711); err != nil {
			return fmt.Errorf("ctrd: %w", err)
		}
	}
	conf := filepath.Join(d.cfg.Dir, "config.toml")
	if err := os.WriteFile(conf, []byte(d.Config()), 0o600); err != nil {
		return fmt.Errorf("ctrd: write config: %w", err)
	}
	d.killStale()
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := d.runOnce(ctx, conf)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > 30*time.Second {
			backoff = 100 * time.Millisecond
		}
		d.log.Error("containerd exited; restarting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
		d.mu.Lock()
		d.restarts++
		d.mu.Unlock()
	}
}

func (d *Daemon) runOnce(ctx context.Context, conf string) error {
	cmd := exec.Command(d.bin("containerd"), "--config", conf)
	path := os.Getenv("PATH")
	if d.cfg.BinDir != "" {
		path = d.cfg.BinDir + string(os.PathListSeparator) + path
	}
	cmd.Env = append(os.Environ(), "PATH="+path)
	cmd.Stdout = d.cfg.Output
	cmd.Stderr = d.cfg.Output
	// containerd dies with boardd (a stale one would hold the socket and
	// the metadata lock); the shims, and so the workloads, live on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	os.Remove(d.cfg.Address)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	_ = os.WriteFile(filepath.Join(d.cfg.Dir, "containerd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	d.mu.Lock()
	d.cmd = cmd
	d.mu.Unlock()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	go d.watchReady(ctx, exited)
	select {
	case err := <-exited:
		d.setUp(false)
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		d.setUp(false)
		return ctx.Err()
	}
}

func (d *Daemon) watchReady(ctx context.Context, exited <-chan error) {
	for {
		c, err := net.DialTimeout("unix", d.cfg.Address, time.Second)
		if err == nil {
			c.Close()
			d.setUp(true)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		d.mu.Lock()
		done := d.cmd == nil || d.cmd.ProcessState != nil
		d.mu.Unlock()
		if done {
			return
		}
	}
}

func (d *Daemon) setUp(up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.up = up
	if up {
		select {
		case <-d.ready:
		default:
			close(d.ready)
		}
	}
}

// Ready waits until containerd first answers on its socket.
func (d *Daemon) Ready(ctx context.Context) error {
	select {
	case <-d.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ctrd: containerd not ready: %w", ctx.Err())
	}
}

// Pid is the running containerd's process id (0 if none).
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil || !d.up {
		return 0
	}
	return d.cmd.Process.Pid
}

// Restarts counts how often containerd was restarted.
func (d *Daemon) Restarts() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.restarts
}

// killStale ends a containerd left by a previous boardd on the same dir
// (found by its pid file and command line).
func (d *Daemon) killStale() {
	b, err := os.ReadFile(filepath.Join(d.cfg.Dir, "containerd.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(d.cfg.Dir, "config.toml")) {
		return
	}
	d.log.Warn("killing stale containerd", "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
