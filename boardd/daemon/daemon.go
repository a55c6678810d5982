// Package daemon composes boardd: the BMC collector (source) feeds the
// snapshot store; the board policy judges it; every change becomes an
// event persisted to the durable log and then published on the bus; the
// sinks (BMC SEL, Redfish SSE and subscriptions) and the APIs (Redfish
// over HTTPS, Prometheus metrics over HTTP) read from there. Nothing that
// serves a request waits on the hardware.
//
// Other parts of boardd (watchdog, fabric, workloads, the JSON API) plug
// in as Components built from the daemon's shared parts (see Plug).
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/dial"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/collector"
	"podos.dev/podos/boardd/eventlog"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/metrics"
	"podos.dev/podos/boardd/redfish"
	"podos.dev/podos/boardd/selsink"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/boardd/tlsutil"
	"podos.dev/podos/boardd/watchdog"
)

// Defaults.
const (
	DefaultListen        = ":8443"
	DefaultMetricsListen = ":9102"
)

// Component is a part of boardd that runs as long as the daemon: a
// watchdog petter, the fabric watcher, the workload manager. Run returns
// when ctx is done; an error ends the daemon.
type Component interface {
	Run(ctx context.Context) error
}

// ComponentFunc makes a function a Component.
type ComponentFunc func(ctx context.Context) error

// Run implements Component.
func (f ComponentFunc) Run(ctx context.Context) error { return f(ctx) }

// Plug builds a component from the daemon's shared parts (store, bus,
// emitter, config, heartbeats, mounts). It runs in New, before anything
// starts; it may also just register an HTTP mount or a Redfish tree and
// return a nil Component.
type Plug func(d *Daemon) (Component, error)

// Options configure the daemon.
type Options struct {
	// BMCURL overrides the config's bmc.url: ipmi+kcs:///dev/ipmi0,
	// ipmi+lan://user:password@host:port or redfish+https://user:password@host.
	BMCURL string
	// Listen is the HTTPS (Redfish) address (default :8443); MetricsListen
	// the plain-HTTP Prometheus address (default :9102).
	Listen, MetricsListen string
	// StateDir holds the event log, accounts and TLS certificate.
	StateDir string
	// Config is the board config (boardconfig.Default() if nil).
	Config            *boardconfig.Config
	AdminPasswordFile string
	Logger            *slog.Logger
	// Dial opens BMC clients (default bmc/dial.Open: ipmi+lan, ipmi+kcs,
	// redfish+https).
	Dial DialFunc
	// Clock is the collector's clock (default the wall clock).
	Clock collector.Clock
	// EventLog bounds the durable log (Dir is StateDir/events).
	EventLog eventlog.Options
	// Interval overrides the config's poll interval.
	Interval time.Duration
	// Plugs add components (watchdog, fabric, workloads...).
	Plugs []Plug
	// Version is shown in Redfish.
	Version string
}

// Daemon is a composed boardd. New builds it; Run runs it once.
type Daemon struct {
	o      Options
	cfg    *boardconfig.Config
	log    *slog.Logger
	store  *snapshot.Store
	bus    *events.Bus
	elog   *eventlog.Log
	emit   *events.Emitter
	hb     *watchdog.Heartbeats
	coll   *collector.Collector
	sel    *selsink.Sink
	aux    *auxConn
	mounts map[string]http.Handler
	trees  []redfish.Tree
	extra  []prometheus.Collector
	comps  []Component

	ready       chan struct{}
	addr, maddr string
}

// New validates the options, opens the state dir and the event log, and
// builds every part; nothing runs until Run.
func New(o Options) (*Daemon, error) {
	if o.StateDir == "" {
		return nil, errors.New("no state dir (--state-dir)")
	}
	if o.Config == nil {
		o.Config = boardconfig.Default()
	}
	if o.BMCURL == "" {
		o.BMCURL = o.Config.BMC.URL
	}
	if o.BMCURL == "" {
		return nil, errors.New("no BMC URL (--bmc, or bmc.url in the board config)")
	}
	if o.Dial == nil {
		if err := CheckBMCURL(o.BMCURL); err != nil {
			return nil, err
		}
		o.Dial = dial.Open
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.MetricsListen == "" {
		o.MetricsListen = DefaultMetricsListen
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = collector.SystemClock{}
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	d := &Daemon{
		o: o, cfg: o.Config, log: o.Logger,
		store:  snapshot.NewStore(),
		bus:    events.NewBus(),
		hb:     watchdog.NewHeartbeats(o.Clock.Now),
		mounts: map[string]http.Handler{},
		ready:  make(chan struct{}),
	}
	lo := o.EventLog
	lo.Dir = filepath.Join(o.StateDir, "events")
	lo.Logger = o.Logger.With("component", "eventlog")
	elog, err := eventlog.Open(lo)
	if err != nil {
		return nil, err
	}
	d.elog = elog
	d.emit = &events.Emitter{Log: elog, Bus: d.bus}

	dialOpts := dial.Options{Timeout: d.cfg.BMC.Timeout.Duration, Retries: d.cfg.BMC.Retries, Logger: o.Logger.With("component", "bmc")}
	dialBMC := func(ctx context.Context) (bmc.Client, error) { return o.Dial(ctx, o.BMCURL, dialOpts) }
	interval := o.Interval
	if interval <= 0 {
		interval = d.cfg.Poll.Interval.Duration
	}
	if interval <= 0 {
		interval = time.Second
	}
	// The collector must finish a poll within this; a dial or a BMC that
	// drops requests can take several request timeouts.
	collDeadline := max(10*interval, 30*time.Second)
	beat := d.hb.Register("collector", collDeadline)
	d.coll, err = collector.New(collector.Options{
		Dial: dialBMC, Config: d.cfg, Store: d.store, Emitter: d.emit,
		Interval: interval, Clock: o.Clock, Logger: o.Logger, Beat: beat.Beat,
		Transport: transportOf(o.BMCURL),
	})
	if err != nil {
		elog.Close()
		return nil, err
	}
	d.aux = &auxConn{dial: dialBMC}
	selBeat := d.hb.Register("selsink", 3*time.Minute)
	d.sel, err = selsink.New(selsink.Options{Bus: d.bus, Client: d.aux, Logger: o.Logger, Beat: selBeat.Beat})
	if err != nil {
		elog.Close()
		return nil, err
	}
	for _, p := range o.Plugs {
		c, err := p(d)
		if err != nil {
			elog.Close()
			return nil, err
		}
		if c != nil {
			d.comps = append(d.comps, c)
		}
	}
	return d, nil
}

// Store is the snapshot store (read the board here).
func (d *Daemon) Store() *snapshot.Store { return d.store }

// Bus is the live event bus.
func (d *Daemon) Bus() *events.Bus { return d.bus }

// Events persists then publishes events (for components that produce them).
func (d *Daemon) Events() *events.Emitter { return d.emit }

// EventLog reads the durable event log.
func (d *Daemon) EventLog() events.Reader { return d.elog }

// Config is the board config in force.
func (d *Daemon) Config() *boardconfig.Config { return d.cfg }

// Logger is the daemon's logger.
func (d *Daemon) Logger() *slog.Logger { return d.log }

// StateDir is the daemon's state directory.
func (d *Daemon) StateDir() string { return d.o.StateDir }

// Heartbeats tracks the daemon's loops; components register their own.
func (d *Daemon) Heartbeats() *watchdog.Heartbeats { return d.hb }

// Healthy reports whether every loop of the daemon (the collector and any
// registered component loop) made progress within its deadline: the
// watchdog pets only while it is true.
func (d *Daemon) Healthy() bool { return d.hb.Healthy() }

// Collector is the BMC poll loop (LastIteration for liveness).
func (d *Daemon) Collector() *collector.Collector { return d.coll }

// SELSink is the BMC SEL writer.
func (d *Daemon) SELSink() *selsink.Sink { return d.sel }

// Mount serves h under prefix (e.g. "/podos/v1/") on the HTTPS listener,
// behind Redfish authentication. Call it from a Plug.
func (d *Daemon) Mount(prefix string, h http.Handler) { d.mounts[prefix] = h }

// AddRedfishTree adds resources to the Redfish service. Call it from a Plug.
func (d *Daemon) AddRedfishTree(t redfish.Tree) { d.trees = append(d.trees, t) }

// RegisterMetrics adds a Prometheus collector to /metrics (e.g. the
// fabric's). Call it from a Plug.
func (d *Daemon) RegisterMetrics(c prometheus.Collector) { d.extra = append(d.extra, c) }

// Ready is closed once both listeners are open.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Addr is the HTTPS listener's address (after Ready).
func (d *Daemon) Addr() string { return d.addr }

// MetricsAddr is the metrics listener's address (after Ready).
func (d *Daemon) MetricsAddr() string { return d.maddr }

// Run opens the listeners and runs every part until ctx is done (a clean
// shutdown: nil) or a part fails (its error).
func (d *Daemon) Run(ctx context.Context) error {
	defer d.elog.Close()
	defer d.aux.Close()

	tlsCfg, err := tlsutil.Load(d.o.StateDir, "", "")
	if err != nil {
		return err
	}
	accounts, err := auth.Open(d.o.StateDir, d.o.AdminPasswordFile, d.log.With("component", "auth"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", d.o.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", d.o.Listen, err)
	}
	mln, err := net.Listen("tcp", d.o.MetricsListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("metrics listen %s: %w", d.o.MetricsListen, err)
	}
	port := 0
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	rf, err := redfish.New(redfish.Options{
		Store: d.store, Events: d.elog, Bus: d.bus, SEL: d.aux, Config: d.cfg, Auth: accounts,
		Logger: d.log, Mounts: d.mounts, Extra: d.trees, Version: d.o.Version, HTTPSPort: port,
		StateDir: d.o.StateDir,
	})
	if err != nil {
		ln.Close()
		mln.Close()
		return err
	}
	defer rf.Close()

	errLog := slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)
	httpsSrv := &http.Server{Handler: rf.Handler(), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	reg := metrics.NewRegistry(d.store)
	for _, c := range d.extra {
		if err := reg.Register(c); err != nil {
			ln.Close()
			mln.Close()
			return fmt.Errorf("metrics: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !d.Healthy() {
			http.Error(w, "stale loops: "+fmt.Sprint(d.hb.Stale()), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	metricsSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	d.addr, d.maddr = ln.Addr().String(), mln.Addr().String()
	close(d.ready)
	d.log.Info("boardd serving", "redfish", "https://"+d.addr, "metrics", "http://"+d.maddr+"/metrics",
		"bmc", redactURL(d.o.BMCURL), "board", d.cfg.Board.ID, "state_dir", d.o.StateDir)
	if _, err := d.emit.Emit(events.Event{
		Kind: events.KindService, Source: "boardd", Severity: health.OK, From: health.OK, To: health.OK,
		Message:   "boardd started.",
		MessageID: "ResourceEvent.1.4.ResourceStateChanged", MessageArgs: []string{"boardd", "Enabled"},
		Origin: "/redfish/v1/Managers/boardd",
	}); err != nil {
		d.log.Error("event log", "err", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 4+len(d.comps))
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	serve := func(name string, srv *http.Server, l net.Listener, tls bool) {
		run(name, func(ctx context.Context) error {
			var err error
			if tls {
				err = srv.Serve(newTLSListener(l, srv.TLSConfig))
			} else {
				err = srv.Serve(l)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
	}
	serve("https", httpsSrv, ln, true)
	serve("metrics", metricsSrv, mln, false)
	run("collector", d.coll.Run)
	run("selsink", d.sel.Run)
	for i, c := range d.comps {
		run("component "+strconv.Itoa(i), c.Run)
	}

	var runErr error
	why := "boardd stopping."
	select {
	case <-ctx.Done():
		d.log.Info("shutting down")
	case runErr = <-errc:
		d.log.Error("a part of boardd failed: shutting down", "err", runErr)
		why = "boardd stopping: " + runErr.Error() + "."
	}
	cancel()
	if _, err := d.emit.Emit(events.Event{
		Kind: events.KindService, Source: "boardd", Severity: health.OK, From: health.OK, To: health.OK,
		Message:   why,
		MessageID: "ResourceEvent.1.4.ResourceStateChanged", MessageArgs: []string{"boardd", "Disabled"},
		Origin: "/redfish/v1/Managers/boardd",
	}); err != nil {
		d.log.Error("event log", "err", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	rf.Close() // ends SSE streams first, so Shutdown does not wait on them
	_ = httpsSrv.Shutdown(sctx)
	_ = metricsSrv.Shutdown(sctx)
	wg.Wait()
	return runErr
}

func newTLSListener(l net.Listener, c *tls.Config) net.Listener { return tls.NewListener(l, c) }

// Run builds and runs a daemon.
func Run(ctx context.Context, o Options) error {
	d, err := New(o)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}
