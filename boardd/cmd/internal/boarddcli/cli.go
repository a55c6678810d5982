// Package boarddcli is the command line of the board daemon, shared by
// its two binaries:
//
//   - boardd (boardd/cmd/boardd): everything but the workloads. This is
//     the process that polls the BMC on every board, so it links nothing
//     it does not run: the containerd client (grpc, protobuf registries,
//     otel...) would add about 15 MB of binary and 10 MB of RSS, mostly
//     its code and tables paged in (make bench-boardd).
//   - boardd-workloads (boardd/cmd/boardd-workloads): the same daemon with
//     the workloads (supervised containerd) linked in.
//
// Both take the same flags. `boardd --workloads ...` replaces itself
// (execve, same pid, same arguments and environment) with the
// boardd-workloads found next to it or on PATH, so a supervisor that
// starts boardd needs no change and a board without workloads never pays
// for them.
package boarddcli

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
	"podos.dev/podos/boardd/watchdog"
	"podos.dev/podos/fabric"
	"podos.dev/podos/fabric/fabricd"
)

// WorkloadsBinary is the name of the binary that has the workloads linked
// in; boardd execs it for --workloads.
const WorkloadsBinary = "boardd-workloads"

// Build says what a binary links.
type Build struct {
	// Version is reported by the daemon (set at link time).
	Version string
	// Workloads builds the workloads plug; nil in a binary built without
	// them.
	Workloads func(containerdBin, containerdDir string) daemon.Plug
	// Delegate runs the request for workloads in a binary that has them
	// (boardd: exec boardd-workloads). It returns only on failure. Used
	// when Workloads is nil and --workloads is given; nil: --workloads
	// is a usage error.
	Delegate func(args []string) error
}

// Main runs the daemon with os.Args and exits.
func Main(b Build) {
	if os.Getenv("GOGC") == "" {
		// A board has little memory and boardd's heap is small and
		// churns (one LAN exchange per sensor per second): collecting at
		// 50% growth keeps RSS about 5 MB lower for no measurable CPU
		// (make bench-boardd). GOGC in the environment overrides.
		debug.SetGCPercent(50)
	}
	os.Exit(Run(b, os.Args[1:], os.Stderr))
}

// Run runs the daemon with args (flags only) until SIGTERM or SIGINT and
// returns the exit status: 0 clean stop, 1 failure, 2 bad flag or config
// (one line on stderr saying what is wrong).
func Run(b Build, args []string, stderr io.Writer) int {
	o, logger, delegate, err := parse(b, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && delegate {
		err = b.Delegate(args) // returns only if it could not
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

// parse checks every flag and the config; delegate says the workloads
// were asked for and this binary has to hand over to one that has them.
func parse(b Build, args []string, stderr io.Writer) (o daemon.Options, logger *slog.Logger, delegate bool, err error) {
	fs := flag.NewFlagSet("boardd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
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
	fs.BoolVar(&p.workloads, "workloads", false, "run the config's workloads (supervises containerd; boardd runs "+WorkloadsBinary+" for them)")
	fs.StringVar(&p.containerdBin, "containerd-bin", "", "directory holding containerd, containerd-shim-runc-v2 and runc (default: PATH)")
	fs.StringVar(&p.containerdDir, "containerd-dir", "", "containerd's root, state and socket (default /run/podos/containerd)")
	fs.Usage = func() {} // a bad flag gets one line, not the whole usage
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintln(stderr, "usage: boardd --bmc URL --state-dir DIR [flags]")
			fs.PrintDefaults()
		}
		return o, nil, false, err
	}
	if fs.NArg() > 0 {
		return o, nil, false, fmt.Errorf("unexpected argument %q (flags only; see --help)", fs.Arg(0))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return o, nil, false, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		return o, nil, false, fmt.Errorf("bad --log-format %q: want text or json", logFormat)
	}
	o.Logger = logger
	if o.StateDir == "" {
		return o, nil, false, errors.New("--state-dir is required")
	}
	if poll < 0 {
		return o, nil, false, fmt.Errorf("bad --poll %s: must be positive", poll)
	}
	o.Interval = poll
	if configFile != "" {
		cfg, err := boardconfig.Load(configFile)
		if err != nil {
			return o, nil, false, err
		}
		o.Config = cfg
	} else {
		o.Config = boardconfig.Default()
	}
	if o.BMCURL == "" && o.Config.BMC.URL == "" {
		return o, nil, false, errors.New("--bmc is required (the board config has no bmc.url)")
	}
	url := o.BMCURL
	if url == "" {
		url = o.Config.BMC.URL
	}
	if err := daemon.CheckBMCURL(url); err != nil {
		return o, nil, false, err
	}
	if p.watchdog != "" && p.watchdogTimeout < time.Second {
		return o, nil, false, fmt.Errorf("bad --watchdog-timeout %s: at least 1s", p.watchdogTimeout)
	}
	if p.workloads && b.Workloads == nil {
		if b.Delegate == nil {
			return o, nil, false, errors.New("--workloads: this boardd was built without workloads")
		}
		return o, logger, true, nil
	}
	if p.workloads {
		p.workloadsPlug = b.Workloads(p.containerdBin, p.containerdDir)
	}
	o.Plugs = p.plugs(o.Config)
	o.Version = b.Version
	return o, logger, false, nil
}

// parts are the optional parts of boardd, chosen by flags.
type parts struct {
	watchdog        string
	watchdogTimeout time.Duration
	sysfs           string
	workloads       bool
	containerdBin   string
	containerdDir   string
	workloadsPlug   daemon.Plug
}

// plugs composes the optional parts into the daemon.
func (p parts) plugs(cfg *boardconfig.Config) []daemon.Plug {
	var out []daemon.Plug
	if cfg.Fabric != nil && p.sysfs != "" {
		out = append(out, fabricd.Plug(p.sysfs, fabric.SourceOptions{}),
			func(d *daemon.Daemon) (daemon.Component, error) {
				d.RegisterMetrics(fabricd.MetricsCollector(d.Store()))
				return nil, nil
			})
	}
	if p.workloadsPlug != nil {
		out = append(out, p.workloadsPlug)
	}
	if p.watchdog != "" {
		// Last, so it is armed only once every other part is built.
		out = append(out, func(d *daemon.Daemon) (daemon.Component, error) {
			return daemon.ComponentFunc(func(ctx context.Context) error {
				return watchdog.Run(ctx, watchdog.Config{
					Path: p.watchdog, Timeout: p.watchdogTimeout,
					Healthy: d.Healthy, Logger: d.Logger().With("component", "watchdog"),
				})
			}), nil
		})
	}
	return out
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
