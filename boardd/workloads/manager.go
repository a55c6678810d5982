package workloads

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"sync"
	"time"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
)

// EventSink persists an event (the daemon's durable event log) and
// returns it with its sequence number.
type EventSink interface {
	Append(events.Event) (events.Event, error)
}

// Options configure a Manager. Zero durations take the defaults noted.
type Options struct {
	Runtime  Runtime
	StateDir string // workloads.json and uploaded images live here
	Config   []Spec // the board config's workloads
	// Events persists every workload event; Publish (optional) then hands
	// the persisted event to the bus. Leave Publish nil when the sink
	// publishes by itself.
	Events  EventSink
	Publish func(events.Event)
	Logger  *slog.Logger

	LogBytes     int           // output kept per workload; default 256 KiB
	BackoffBase  time.Duration // first restart delay; default 1s
	BackoffMax   time.Duration // default 60s
	BackoffReset time.Duration // a run this long resets the backoff; default 10s
	StopGrace    time.Duration // SIGTERM to SIGKILL; default 10s
	Poll         time.Duration // re-check while waiting; default 2s
	MaxExecOut   int           // bytes kept of an exec's stdout and stderr each; default 1 MiB
	Now          func() time.Time
}

// Workload states reported by the API.
const (
	StateStarting   = "starting"
	StateRunning    = "running"
	StatePaused     = "paused"
	StateStopped    = "stopped"
	StateRestarting = "restarting"
	StateFailed     = "failed"
)

// Info is one workload as the API shows it.
type Info struct {
	Name       string     `json:"name"`
	Spec       Spec       `json:"spec"`
	Source     string     `json:"source"` // config | api
	State      string     `json:"state"`
	Priority   string     `json:"priority"`
	Restarts   int        `json:"restarts"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	Error      string     `json:"error,omitempty"`
	Protection string     `json:"protection,omitempty"` // frozen | stopped | throttled
	ShedReason string     `json:"shed_reason,omitempty"`
	ThrottlePc int        `json:"throttle_percent,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	NextStart  *time.Time `json:"next_start,omitempty"` // restarting: when
}

// ExecResult is the outcome of Exec.
type ExecResult struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	ExitCode  int    `json:"exit_code"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Manager errors.
var (
	ErrNoWorkload = errors.New("no such workload")
	ErrNotRunning = errors.New("workload is not running")
	// ErrExecStart: the runtime could not start an exec'd command (no
	// such executable, bad working directory): the caller's mistake.
	ErrExecStart = errors.New("command could not be started")
)

// Manager reconciles the desired workloads with the runtime.
type Manager struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	ws      map[string]*workload
	state   persisted
	config  map[string]Spec
	stateMu sync.Mutex // serializes saveState
	wg      sync.WaitGroup
}

type workload struct {
	name   string
	logs   *LogRing
	notify chan struct{}
	done   chan struct{}

	// opMu serializes runtime operations on the container; the fields
	// below it are guarded by it.
	opMu       sync.Mutex
	attached   bool
	cpuApplied float64
	cpuKnown   bool

	// guarded by Manager.mu
	spec      Spec
	source    string
	gen       uint64 // bumped by every apply: a new apply retries a finished workload
	removed   bool
	prot      Protection
	info      Info
	startedAt time.Time
}

// New returns a Manager; Run starts it.
func New(opt Options) (*Manager, error) {
	if opt.Runtime == nil {
		return nil, errors.New("workloads: no runtime")
	}
	if opt.StateDir == "" {
		return nil, errors.New("workloads: no state dir")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opt.BackoffBase, time.Second)
	def(&opt.BackoffMax, time.Minute)
	def(&opt.BackoffReset, 10*time.Second)
	def(&opt.StopGrace, 10*time.Second)
	def(&opt.Poll, 2*time.Second)
	if opt.LogBytes <= 0 {
		opt.LogBytes = 256 << 10
	}
	if opt.MaxExecOut <= 0 {
		opt.MaxExecOut = 1 << 20
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	m := &Manager{opt: opt, log: opt.Logger.With("component", "workloads"), ws: map[string]*workload{}, config: map[string]Spec{}}
	for i, s := range opt.Config {
		n, err := Normalize(s)
		if err != nil {
			return nil, fmt.Errorf("workloads: board config workload %d: %w", i, err)
		}
		m.config[n.Name] = n
	}
	st, err := loadState(opt.StateDir)
	if errors.Is(err, errCorruptState) {
		// Keep the bad file for the operator and start from the config:
		// the board must come up with its critical workloads.
		bad := filepath.Join(opt.StateDir, fmt.Sprintf("%s.corrupt-%d", stateFile, opt.Now().Unix()))
		if rerr := os.Rename(filepath.Join(opt.StateDir, stateFile), bad); rerr != nil {
			return nil, fmt.Errorf("%w (and keeping it aside failed: %v)", err, rerr)
		}
		m.log.Error("workload state unreadable; kept aside, starting from the board config", "err", err, "kept", bad)
		st, err = persisted{Version: 1}, nil
	}
	if err != nil {
		return nil, err
	}
	m.state = st
	for name, s := range m.desired() {
		src := "config"
		if _, ok := m.applied(name); ok {
			src = "api"
		}
		m.ws[name] = m.newWorkload(s, src)
	}
	return m, nil
}

// desired merges the board config with the persisted API changes.
func (m *Manager) desired() map[string]Spec {
	out := map[string]Spec{}
	for n, s := range m.config {
		out[n] = s
	}
	for _, n := range m.state.Removed {
		delete(out, n)
	}
	for _, s := range m.state.Applied {
		if n, err := Normalize(s); err == nil {
			out[n.Name] = n
		} else {
			m.log.Warn("ignoring persisted workload", "name", s.Name, "err", err)
		}
	}
	return out
}

func (m *Manager) applied(name string) (int, bool) {
	for i, s := range m.state.Applied {
		if s.Name == name {
			return i, true
		}
	}
	return -1, false
}

func (m *Manager) newWorkload(s Spec, source string) *workload {
	w := &workload{
		name: s.Name, spec: s, source: source,
		logs:   NewLogRing(m.opt.LogBytes),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	w.info = Info{Name: s.Name, State: StateStarting}
	return w
}

// Run reconciles until ctx ends. Workloads keep running when it returns
// (containerd's shims hold them); the next Run reattaches.
func (m *Manager) Run(ctx context.Context) error {
	wg := &m.wg
	m.mu.Lock()
	if m.ctx != nil {
		m.mu.Unlock()
		return errors.New("workloads: manager already running")
	}
	m.ctx = ctx
	for _, w := range m.ws {
		m.startWorker(ctx, wg, w)
	}
	m.mu.Unlock()
	wg.Add(1)
	go func() { defer wg.Done(); m.cleanupOrphans(ctx) }()
	<-ctx.Done()
	wg.Wait()
	return nil
}

func (m *Manager) startWorker(ctx context.Context, wg *sync.WaitGroup, w *workload) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.runWorkload(ctx, w)
	}()
}

// cleanupOrphans removes containers of workloads no longer desired
// (deleted while boardd was down, or left by an older config).
func (m *Manager) cleanupOrphans(ctx context.Context) {
	for {
		ids, err := m.opt.Runtime.List(ctx)
		if err == nil {
			for _, id := range ids {
				m.mu.Lock()
				_, ok := m.ws[id]
				m.mu.Unlock()
				if !ok {
					m.log.Info("removing orphan container", "name", id)
					if err := m.opt.Runtime.Remove(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
						m.log.Warn("remove orphan", "name", id, "err", err)
					}
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.opt.Poll):
		}
	}
}

// Apply adds or replaces a workload (an API apply) and persists it. It
// returns the workload and whether it was created.
func (m *Manager) Apply(ctx context.Context, s Spec) (Info, bool, error) {
	s, err := Normalize(s)
	if err != nil {
		return Info{}, false, err
	}
	m.mu.Lock()
	if i, ok := m.applied(s.Name); ok {
		m.state.Applied[i] = s
	} else {
		m.state.Applied = append(m.state.Applied, s)
	}
	m.state.Removed = without(m.state.Removed, s.Name)
	st := clonePersisted(m.state)
	w, exists := m.ws[s.Name]
	if exists && w.removed {
		// Being removed: wait for the old worker below, then start anew.
		exists = false
	}
	m.mu.Unlock()
	if err := m.save(st); err != nil {
		return Info{}, false, err
	}
	if w != nil && w.removed {
		select {
		case <-w.done:
		case <-ctx.Done():
			return Info{}, false, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if exists {
		changed := Hash(w.spec) != Hash(s)
		w.spec = s
		w.source = "api"
		w.gen++
		poke(w)
		if changed {
			m.wevent(w, health.OK, fmt.Sprintf("workload %s updated (image %s, priority %s): its container is recreated", s.Name, s.Image, s.Priority), "updated", nil)
		}
		return m.infoLocked(w), false, nil
	}
	w = m.newWorkload(s, "api")
	m.ws[s.Name] = w
	if m.ctx != nil && m.ctx.Err() == nil {
		m.startWorker(m.ctx, &m.wg, w)
	}
	m.wevent(w, health.OK, fmt.Sprintf("workload %s applied (image %s, priority %s)", s.Name, s.Image, s.Priority), "applied", nil)
	return m.infoLocked(w), true, nil
}

// Delete stops and removes a workload and waits until it is gone.
func (m *Manager) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	w, ok := m.ws[name]
	if !ok || w.removed {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoWorkload, name)
	}
	if i, ok := m.applied(name); ok {
		m.state.Applied = append(m.state.Applied[:i], m.state.Applied[i+1:]...)
	}
	if _, ok := m.config[name]; ok && !contains(m.state.Removed, name) {
		m.state.Removed = append(m.state.Removed, name)
	}
	st := clonePersisted(m.state)
	w.removed = true
	running := m.ctx != nil
	poke(w)
	m.mu.Unlock()
	if err := m.save(st); err != nil {
		return err
	}
	if !running {
		m.mu.Lock()
		delete(m.ws, name)
		m.mu.Unlock()
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List returns every workload, by name.
func (m *Manager) List() []Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Info, 0, len(m.ws))
	for _, w := range m.ws {
		if !w.removed {
			out = append(out, m.infoLocked(w))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns one workload.
func (m *Manager) Get(name string) (Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.ws[name]
	if !ok || w.removed {
		return Info{}, fmt.Errorf("%w: %s", ErrNoWorkload, name)
	}
	return m.infoLocked(w), nil
}

// Logs returns a workload's output ring.
func (m *Manager) Logs(name string) (*LogRing, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.ws[name]
	if !ok || w.removed {
		return nil, fmt.Errorf("%w: %s", ErrNoWorkload, name)
	}
	return w.logs, nil
}

// Refs returns every workload's name and priority (for the shed decision).
func (m *Manager) Refs() []WorkloadRef {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]WorkloadRef, 0, len(m.ws))
	for _, w := range m.ws {
		if !w.removed {
			out = append(out, WorkloadRef{Name: w.name, Priority: w.spec.Priority})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Protections returns the protection in force on every workload.
func (m *Manager) Protections() map[string]Protection {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Protection{}
	for _, w := range m.ws {
		out[w.name] = w.prot
	}
	return out
}

// Exec runs cmd in a running workload.
func (m *Manager) Exec(ctx context.Context, name string, cmd []string) (ExecResult, error) {
	m.mu.Lock()
	w, ok := m.ws[name]
	m.mu.Unlock()
	if !ok || w.removed {
		return ExecResult{}, fmt.Errorf("%w: %s", ErrNoWorkload, name)
	}
	if len(cmd) == 0 {
		return ExecResult{}, &FieldError{Field: "cmd", Message: "is required"}
	}
	st, err := m.opt.Runtime.Status(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return ExecResult{}, err
	}
	if st.State != TaskRunning {
		return ExecResult{}, fmt.Errorf("%w: %s is %s", ErrNotRunning, name, st.State)
	}
	out := &capBuffer{max: m.opt.MaxExecOut}
	errb := &capBuffer{max: m.opt.MaxExecOut}
	code, err := m.opt.Runtime.Exec(ctx, name, cmd, out, errb)
	if err != nil {
		return ExecResult{}, err
	}
	return ExecResult{Stdout: out.String(), Stderr: errb.String(), ExitCode: code, Truncated: out.over || errb.over}, nil
}

// ImportImage stores an uploaded OCI archive in the state dir, imports it
// and remembers its image names, so a workload can name them and they
// come back after the runtime loses its store.
func (m *Manager) ImportImage(ctx context.Context, r io.Reader) ([]string, error) {
	dir := filepath.Join(m.opt.StateDir, "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("workloads: images dir: %w", err)
	}
	f, err := os.CreateTemp(dir, "upload-*.tar")
	if err != nil {
		return nil, fmt.Errorf("workloads: store image: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	h := sha256.New()
	if _, err := io.Copy(f, io.TeeReader(r, h)); err != nil {
		f.Close()
		return nil, fmt.Errorf("workloads: store image: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("workloads: store image: %w", err)
	}
	final := filepath.Join(dir, hex.EncodeToString(h.Sum(nil))[:32]+".tar")
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("workloads: store image: %w", err)
	}
	af, err := os.Open(final)
	if err != nil {
		return nil, fmt.Errorf("workloads: store image: %w", err)
	}
	defer af.Close()
	names, err := m.opt.Runtime.ImportArchive(ctx, af)
	if err != nil {
		os.Remove(final)
		return nil, err
	}
	if len(names) == 0 {
		os.Remove(final)
		return nil, errors.New("workloads: the archive names no image (set the io.containerd.image.name or org.opencontainers.image.ref.name annotation)")
	}
	m.mu.Lock()
	if m.state.Images == nil {
		m.state.Images = map[string]string{}
	}
	for _, n := range names {
		m.state.Images[n] = final
	}
	st := clonePersisted(m.state)
	m.mu.Unlock()
	return names, m.save(st)
}

// SetProtection puts a workload under (or out of) protection and applies
// it at once: pause or resume, CPU quota, stop. The worker enforces it
// afterwards too (after a runtime restart, a new task...).
func (m *Manager) SetProtection(ctx context.Context, name string, p Protection) error {
	m.mu.Lock()
	w, ok := m.ws[name]
	if !ok || w.removed {
		m.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNoWorkload, name)
	}
	w.prot = p
	spec := w.spec
	m.mu.Unlock()
	defer poke(w)
	w.opMu.Lock()
	defer w.opMu.Unlock()
	st, err := m.opt.Runtime.Status(ctx, name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if st.State != TaskRunning && st.State != TaskPaused {
		return nil // the worker applies it when it starts the task
	}
	if p.Mode == ModeStopped {
		w.attached = false
		if err := m.opt.Runtime.Stop(ctx, name, m.opt.StopGrace); err != nil {
			return err
		}
		m.setInfoState(w, StateStopped)
		return nil
	}
	if err := m.enforceLocked(ctx, w, st, spec, p); err != nil {
		return err
	}
	if p.Mode == ModeFrozen {
		m.setInfoState(w, StatePaused)
	} else {
		m.setInfoState(w, StateRunning)
	}
	return nil
}

func (m *Manager) setInfoState(w *workload, state string) {
	m.mu.Lock()
	w.info.State = state
	m.mu.Unlock()
}

// enforceLocked makes a live task match its protection. w.opMu is held.
func (m *Manager) enforceLocked(ctx context.Context, w *workload, st Status, spec Spec, p Protection) error {
	want := cpuFor(spec, p)
	if !w.cpuKnown || w.cpuApplied != want {
		if err := m.opt.Runtime.SetCPU(ctx, w.name, want); err != nil {
			return fmt.Errorf("set cpu of %s: %w", w.name, err)
		}
		w.cpuApplied, w.cpuKnown = want, true
	}
	switch {
	case p.Mode == ModeFrozen && st.State == TaskRunning:
		if err := m.opt.Runtime.Pause(ctx, w.name); err != nil {
			return fmt.Errorf("pause %s: %w", w.name, err)
		}
	case p.Mode != ModeFrozen && st.State == TaskPaused:
		if err := m.opt.Runtime.Resume(ctx, w.name); err != nil {
			return fmt.Errorf("resume %s: %w", w.name, err)
		}
	}
	return nil
}

// cpuFor is the CPU quota in cores for spec under protection p.
func cpuFor(spec Spec, p Protection) float64 {
	if p.Mode != ModeThrottled {
		return spec.CPU
	}
	base := spec.CPU
	if base <= 0 {
		base = float64(goruntime.NumCPU())
	}
	c := base * float64(p.Percent) / 100
	if c < 0.01 {
		c = 0.01
	}
	return c
}

func (m *Manager) infoLocked(w *workload) Info {
	i := w.info
	i.Name = w.name
	i.Spec = w.spec
	i.Source = w.source
	i.Priority = w.spec.Priority
	if w.prot.Mode != ModeNone {
		i.Protection = w.prot.Mode.String()
		i.ShedReason = w.prot.Reason
		if w.prot.Mode == ModeThrottled {
			i.ThrottlePc = w.prot.Percent
		}
	}
	return i
}

func (m *Manager) save(st persisted) error {
	m.stateMu.Lock()
	defer m.stateMu.Unlock()
	return saveState(m.opt.StateDir, st)
}

// wevent is event for a workload: the message also goes to the
// workload's log as a "podos" line, so its log tells its story.
func (m *Manager) wevent(w *workload, sev health.State, msg, action string, data map[string]string) {
	w.logs.Add("podos", msg)
	m.event(w.name, sev, msg, action, data)
}

// workloadEvent is wevent by name (no lock held by the caller).
func (m *Manager) workloadEvent(name string, sev health.State, msg, action string, data map[string]string) {
	m.mu.Lock()
	w := m.ws[name]
	m.mu.Unlock()
	if w != nil {
		w.logs.Add("podos", msg)
	}
	m.event(name, sev, msg, action, data)
}

// event persists and publishes a workload event.
func (m *Manager) event(name string, sev health.State, msg, action string, data map[string]string) {
	m.log.Info(msg, "workload", name, "action", action)
	if m.opt.Events == nil && m.opt.Publish == nil {
		return
	}
	d := map[string]string{"action": action}
	for k, v := range data {
		d[k] = v
	}
	ev := events.Event{
		Time: m.opt.Now().UTC(), Kind: events.KindWorkload, Source: name,
		Severity: sev, To: sev, Message: msg,
		MessageID:   "Podos.1.0.WorkloadAction",
		MessageArgs: []string{name, msg},
		Origin:      "/podos/v1/workloads/" + name,
		Data:        d,
	}
	if m.opt.Events != nil {
		var err error
		if ev, err = m.opt.Events.Append(ev); err != nil {
			m.log.Error("append workload event", "err", err)
		}
	}
	if m.opt.Publish != nil {
		m.opt.Publish(ev)
	}
}

func poke(w *workload) {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

func without(xs []string, x string) []string {
	out := xs[:0:0]
	for _, y := range xs {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func clonePersisted(p persisted) persisted {
	q := persisted{Version: p.Version, Applied: append([]Spec(nil), p.Applied...), Removed: append([]string(nil), p.Removed...)}
	if p.Images != nil {
		q.Images = map[string]string{}
		for k, v := range p.Images {
			q.Images[k] = v
		}
	}
	return q
}

// capBuffer keeps the first max bytes written and drops the rest.
type capBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	max  int
	over bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - b.buf.Len()
	if room < len(p) {
		b.over = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *capBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
