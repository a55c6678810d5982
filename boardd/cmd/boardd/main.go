// Command boardd is the podos board daemon: it watches the board's
// sensors through its BMC, applies the board policy, and serves the
// board's health over Redfish (HTTPS) and Prometheus (HTTP).
//
//	boardd --bmc ipmi+lan://admin:password@127.0.0.1:623 --state-dir /var/lib/boardd \
//	       [--config board.yaml] [--listen :8443] [--metrics-listen :9102] \
//	       [--admin-password-file FILE] [--log-level info] [--log-format text] \
//	       [--watchdog /dev/watchdog0] [--fabric-sysfs /sys] \
//	       [--workloads --containerd-bin DIR --containerd-dir DIR]
//
// The parts: the BMC collector, policy, event log, SEL sink, Redfish and
// metrics always run; the PCIe fabric watcher runs when the board config
// has a fabric section (and --fabric-sysfs is not empty); the hardware
// watchdog is petted only with --watchdog (never implicitly: a host run
// must not arm the host's watchdog); workloads run only with --workloads
// (they supervise containerd).
//
// A bad flag or config exits with status 2 and one line saying what is
// wrong; SIGTERM or SIGINT shuts down cleanly (status 0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/daemon"
)

// version is set at link time (-X main.version=...).
var version = "dev"

func main() {
	if os.Getenv("GOGC") == "" {
		// A board has little memory and boardd's heap is small and
		// churns (one LAN exchange per sensor per second): collecting at
		// 50% growth keeps RSS about 5 MB lower for no measurable CPU
		// (make bench-boardd). GOGC in the environment overrides.
		debug.SetGCPercent(50)
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// usageError is a bad flag or config: exit status 2.
type usageError struct{ error }

func run(args []string, stderr io.Writer) int {
	o, logger, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "boardd: "+oneLine(err.Error()))
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.New(o)
	if err != nil {
		fmt.Fprintln(stderr, "boardd: "+oneLine(err.Error()))
		return 2
	}
	if err := d.Run(ctx); err != nil {
		logger.Error("boardd failed", "err", err)
		fmt.Fprintln(stderr, "boardd: "+oneLine(err.Error()))
		return 1
	}
	logger.Info("boardd stopped")
	return 0
}

func parse(args []string, stderr io.Writer) (daemon.Options, *slog.Logger, error) {
	fs := flag.NewFlagSet("boardd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		o          daemon.Options
		configFile string
		logLevel   string
		logFormat  string
		poll       time.Duration
	)
	fs.StringVar(&o.BMCURL, "bmc", "", "BMC URL: ipmi+kcs:///dev/ipmi0, ipmi+lan://user:password@host:port or redfish+https://user:password@host (overrides the config's bmc.url)")
	fs.StringVar(&o.Listen, "listen", daemon.DefaultListen, "HTTPS (Redfish) listen address")
	fs.StringVar(&o.MetricsListen, "metrics-listen", daemon.DefaultMetricsListen, "Prometheus metrics (plain HTTP) listen address")
	fs.StringVar(&o.StateDir, "state-dir", "", "state directory: event log, accounts, TLS certificate (required)")
	fs.StringVar(&configFile, "config", "", "board config YAML (default: every SDR sensor, judged by the BMC's thresholds)")
	fs.StringVar(&o.AdminPasswordFile, "admin-password-file", "", "file holding the first admin account's password")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.DurationVar(&poll, "poll", 0, "override the config's poll interval (e.g. 1s)")
	var p parts
	fs.StringVar(&p.watchdog, "watchdog", "", "pet this watchdog device (e.g. /dev/watchdog0) while boardd's loops are healthy; empty: off")
	fs.DurationVar(&p.watchdogTimeout, "watchdog-timeout", 30*time.Second, "watchdog timeout programmed into the device")
	fs.StringVar(&p.sysfs, "fabric-sysfs", "/sys", "sysfs root for the PCIe fabric watcher (runs when the config has a fabric section); empty: off")
	fs.BoolVar(&p.workloads, "workloads", false, "run the config's workloads (supervises containerd)")
	fs.StringVar(&p.containerdBin, "containerd-bin", "", "directory holding containerd, containerd-shim-runc-v2 and runc (default: PATH)")
	fs.StringVar(&p.containerdDir, "containerd-dir", "", "containerd's root, state and socket (default /run/podos/containerd)")
	fs.Usage = func() {} // a bad flag gets one line, not the whole usage
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: boardd --bmc URL --state-dir DIR [flags]")
			fs.PrintDefaults()
		}
		return o, nil, err
	}
	if fs.NArg() > 0 {
		return o, nil, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return o, nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		return o, nil, fmt.Errorf("bad --log-format %q: want text or json", logFormat)
	}
	o.Logger = logger
	if o.StateDir == "" {
		return o, nil, errors.New("--state-dir is required")
	}
	if poll < 0 {
		return o, nil, fmt.Errorf("bad --poll %s: must be positive", poll)
	}
	o.Interval = poll
	if configFile != "" {
		cfg, err := boardconfig.Load(configFile)
		if err != nil {
			return o, nil, err
		}
		o.Config = cfg
	} else {
		o.Config = boardconfig.Default()
	}
	if o.BMCURL == "" && o.Config.BMC.URL == "" {
		return o, nil, errors.New("--bmc is required (the board config has no bmc.url)")
	}
	url := o.BMCURL
	if url == "" {
		url = o.Config.BMC.URL
	}
	if err := daemon.CheckBMCURL(url); err != nil {
		return o, nil, err
	}
	if p.workloads && !workloadsSupported {
		return o, nil, errors.New("--workloads: this boardd was built without workloads (build tag noworkloads)")
	}
	if p.watchdog != "" && p.watchdogTimeout < time.Second {
		return o, nil, fmt.Errorf("bad --watchdog-timeout %s: at least 1s", p.watchdogTimeout)
	}
	o.Plugs = p.plugs(o.Config)
	o.Version = version
	return o, logger, nil
}

// oneLine folds a multi-line error (a config with several problems) into
// one line.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}
