// Command podinit is the podos board's early-boot stage and supervisor. It
// runs as u-root's uinit (u-root's init mounts the basics and starts it):
// it mounts what the board needs (devtmpfs, proc, sysfs, cgroup2, /run, the
// persistent partition), loads the board's kernel modules in dependency
// order, brings up the management network, floors the clock, and then
// keeps boardd (and the break-glass serial shell) running, restarting them
// with exponential backoff. It is a child subreaper: orphans (containerd's
// shims) re-parent to it and are reaped without taking the supervised
// services' exit statuses. When the image ships the workload runtime it
// starts boardd with --workloads. It never touches the hardware watchdog: boardd
// owns it, so a hung boardd resets the board.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"podos.dev/podos/initramfs/supervise"
)

// Paths inside the image (written by initramfs/cmd/mkimage).
const (
	boardConfig  = "/etc/podos/board.yaml"
	bootConfig   = "/etc/podos/boot.json" // the board config's boot section, as JSON
	modulesList  = "/etc/podos/modules"   // module names to load, one a line
	buildEpoch   = "/etc/podos/build-epoch"
	boarddFlags  = "/etc/podos/boardd.flags"
	stateDir     = "/var/lib/podos"
	runDir       = "/run/podos"
	boarddBinary = "/bin/boardd"
	// The workload runtime (containerd, its shim, runc), shipped when the
	// board config has workloads (initramfs/imagebuild.WorkloadBinDir).
	workloadBinDir = "/usr/libexec/podos"
	// containerd's root and state: tmpfs, so every boot starts clean
	// (the workloads' images are in the initramfs and imported again).
	containerdDir = "/run/podos/containerd"
	shellBinary   = "/bbin/gosh"
)

func main() {
	var (
		shell   = flag.Bool("shell", true, "run the break-glass shell on the serial console")
		logMax  = flag.Int64("log-max", 1<<20, "bytes per boardd log file in /run/podos (two are kept)")
		console = flag.String("console", "/dev/console", "console device for service output")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("stage", "podinit")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, log, *shell, *logMax, *console); err != nil {
		log.Error("podinit failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, shell bool, logMax int64, console string) error {
	t0 := time.Now()
	boot, err := readBoot(bootConfig)
	if err != nil {
		// The image builder always writes it; without it the board can
		// still boot to boardd with defaults.
		log.Error("no boot config; using defaults", "err", err)
	}
	step := func(name string, fn func() error) {
		s := time.Now()
		if err := fn(); err != nil {
			log.Error(name+" failed", "err", err, "took", time.Since(s).Round(time.Millisecond))
			return
		}
		log.Info(name+" done", "took", time.Since(s).Round(time.Millisecond))
	}
	step("mounts", mountAll)
	step("modules", func() error { return loadModules(log, modulesList) })
	step("persistent storage", func() error { return mountPersistent(ctx, log, boot.Persistent, stateDir) })
	step("clock", func() error { return floorClock(log, buildEpoch) })
	// The network comes up beside boardd (which listens on all addresses):
	// DHCP under emulation takes a while and nothing before boardd needs it.
	// It is retried until it works: a board without its management
	// network is unreachable.
	go func() {
		for delay := 2 * time.Second; ; delay = min(2*delay, time.Minute) {
			s := time.Now()
			err := setupNetwork(ctx, log, boot.Network)
			if err == nil {
				log.Info("network done", "took", time.Since(s).Round(time.Millisecond))
				return
			}
			log.Error("network failed; retrying", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}()
	log.Info("early boot done", "took", time.Since(t0).Round(time.Millisecond))
	fmt.Fprintln(os.Stderr, "podinit: early boot done") // marker for tests and benchmarks

	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", runDir, err)
	}
	cons, err := os.OpenFile(console, os.O_WRONLY, 0)
	if err != nil {
		log.Warn("no console; service output goes to stderr", "console", console, "err", err)
		cons = os.Stderr
	}
	lf, err := supervise.OpenLogFile(filepath.Join(runDir, "boardd.log"), logMax)
	if err != nil {
		return err
	}
	defer lf.Close()

	// Orphans re-parent to podinit, not to u-root's init: containerd's
	// shims outlive a killed containerd or boardd, and are reaped here.
	reaper, err := supervise.NewReaper(log)
	if err != nil {
		log.Warn("not a child subreaper: orphans go to init", "err", err)
	} else {
		go reaper.Run(ctx)
	}

	services := []*supervise.Service{{
		Name:    "boardd",
		Path:    boarddBinary,
		Args:    boarddArgs(log, boot.Watchdog),
		Output:  io.MultiWriter(cons, lf),
		Backoff: supervise.Backoff{Min: time.Second, Max: 30 * time.Second, Reset: time.Minute},
		Logger:  log,
		Reaper:  reaper,
		OnStart: func(pid int) {
			_ = os.WriteFile(filepath.Join(runDir, "boardd.pid"), []byte(fmt.Sprintf("%d\n", pid)), 0o644)
		},
	}}
	if shell {
		if svc := serialShell(log); svc != nil {
			svc.Reaper = reaper
			services = append(services, svc)
		}
	}
	var wg sync.WaitGroup
	for _, s := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx); err != nil {
				log.Error("service cannot run", "service", s.Name, "err", err)
			}
		}()
	}
	wg.Wait()
	unix.Sync()
	return nil
}

// boarddArgs is boardd's command line: the defaults for an in-band board,
// or the flags in /etc/podos/boardd.flags (one a line) when present.
func boarddArgs(log *slog.Logger, wdog string) []string {
	if b, err := os.ReadFile(boarddFlags); err == nil {
		var args []string
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				args = append(args, l)
			}
		}
		return args
	}
	args := []string{
		"--bmc", "ipmi+kcs:///dev/ipmi0",
		"--listen", ":8443",
		"--metrics-listen", ":9102",
		"--state-dir", filepath.Join(stateDir, "boardd"),
		"--config", boardConfig,
		"--admin-password-file", filepath.Join(stateDir, "admin-password"),
	}
	// boardd owns the hardware watchdog (boot.watchdog).
	if wdog != "" {
		args = append(args, "--watchdog", wdog)
	}
	args = append(args, workloadArgs(workloadBinDir, containerdDir)...)
	log.Info("boardd command line", "args", strings.Join(args, " "))
	return args
}

// workloadArgs are boardd's workload flags when the image ships the
// workload runtime in binDir, else none.
func workloadArgs(binDir, dir string) []string {
	if fi, err := os.Stat(filepath.Join(binDir, "containerd")); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	return []string{"--workloads", "--containerd-bin", binDir, "--containerd-dir", dir}
}

// serialShell is the break-glass shell on the serial line (ttyS0) only.
func serialShell(log *slog.Logger) *supervise.Service {
	tty, err := os.OpenFile("/dev/ttyS0", os.O_RDWR, 0)
	if err != nil {
		log.Warn("no serial line: no break-glass shell", "err", err)
		return nil
	}
	return &supervise.Service{
		Name:        "serial-shell",
		Path:        shellBinary,
		Stdin:       tty,
		Output:      tty,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
		Backoff:     supervise.Backoff{Min: time.Second, Max: 5 * time.Second},
		Logger:      log,
	}
}
