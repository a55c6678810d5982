// Package collector is boardd's BMC source loop: at every poll interval
// it reads every sensor from the bmc.Client, judges them with the board
// policy, builds a new snapshot and swaps it in, and turns every change
// of state (sensor, subsystem, board, BMC up/down) into an event that is
// persisted to the event log before it is published on the bus.
//
// Readers never wait on the collector: they load the current snapshot.
// When the BMC does not answer, every sensor becomes Unavailable, the
// daemon keeps serving, and the collector reconnects by itself with
// backoff.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
)

// Clock tells the time; tests inject a fake one and drive Step.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// DialFunc opens a new client to the BMC (dial.Open bound to its URL).
type DialFunc func(ctx context.Context) (bmc.Client, error)

// Options configure a Collector.
type Options struct {
	// Client is an open BMC client. If nil, Dial opens one.
	Client bmc.Client
	// Dial re-opens the client after the BMC stopped answering. If nil,
	// the collector keeps Client and retries it.
	Dial DialFunc
	// Config is the board config (boardconfig.Default() if nil).
	Config *boardconfig.Config
	Store  *snapshot.Store
	// Emitter persists then publishes events; required.
	Emitter *events.Emitter
	// Interval between polls (default Config.Poll.Interval, else 1s).
	Interval time.Duration
	// UnavailableAfter is how many polls in a row one sensor must fail
	// before it is Unavailable (default 2): a single dropped reading is
	// not an alarm. The whole BMC failing is reported at once.
	UnavailableAfter int
	// SDRCheck is how often to ask an SDRWatcher client whether the
	// sensor repository changed (default 30s).
	SDRCheck time.Duration
	// Backoff bounds the reconnect delay: it starts at MinBackoff
	// (default Interval) and doubles up to MaxBackoff (default 10s).
	MinBackoff, MaxBackoff time.Duration
	Clock                  Clock
	Logger                 *slog.Logger
	// Transport names the BMC transport ("lan", "kcs", "redfish") until a
	// client says; it labels boardd_bmc_up while the BMC was never reached.
	Transport string
	// Beat, if set, is called after every poll (a liveness heartbeat).
	Beat func()
}

// entry is one sensor the collector tracks.
type entry struct {
	def      bmc.SensorDef
	cfg      *boardconfig.Sensor
	th       bmc.Thresholds
	sub      health.Subsystem
	debounce int
	missing  bool // a required config sensor the BMC does not expose
	st       health.SensorState
	failN    int // consecutive unavailable readings
	last     bmc.Reading
}

// Collector is the BMC poll loop. Create it with New and run it with Run
// (or drive it with Step in tests).
type Collector struct {
	o   Options
	cfg *boardconfig.Config
	log *slog.Logger

	client     bmc.Client
	discovered bool
	entries    []*entry
	defs       []bmc.SensorDef // entries[i].def for present sensors, reused per poll
	present    []*entry        // entries with a BMC sensor, in defs order

	bmcUp      bool
	bmcKnown   bool
	bmcErr     string
	lastOK     time.Time
	nextDial   time.Time
	backoff    time.Duration
	nextSDR    time.Time
	seq        uint64
	subs       map[health.Subsystem]snapshot.Rollup
	owned      map[health.Subsystem]bool // subsystems the collector has ever rolled up
	board      snapshot.Rollup
	boardKnown bool

	lastIter atomic.Int64 // unix nanos of the last finished Step
	mu       sync.Mutex   // serialises Step
	views    []health.SensorView
}

// New checks the options and returns a collector.
func New(o Options) (*Collector, error) {
	if o.Store == nil {
		return nil, errors.New("collector: no snapshot store")
	}
	if o.Emitter == nil || o.Emitter.Log == nil {
		return nil, errors.New("collector: no event log")
	}
	if o.Client == nil && o.Dial == nil {
		return nil, errors.New("collector: neither a client nor a dial function")
	}
	if o.Config == nil {
		o.Config = boardconfig.Default()
	}
	if o.Interval <= 0 {
		o.Interval = o.Config.Poll.Interval.Duration
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.UnavailableAfter <= 0 {
		o.UnavailableAfter = 2
	}
	if o.SDRCheck <= 0 {
		o.SDRCheck = 30 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = o.Interval
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		o:      o,
		cfg:    o.Config,
		log:    o.Logger.With("component", "collector"),
		client: o.Client,
		subs:   map[health.Subsystem]snapshot.Rollup{},
		owned:  map[health.Subsystem]bool{},
	}, nil
}

// Run polls until ctx is done, then closes the client.
func (c *Collector) Run(ctx context.Context) error {
	defer func() {
		c.mu.Lock()
		if c.client != nil {
			c.client.Close()
			c.client = nil
		}
		c.mu.Unlock()
	}()
	t := time.NewTicker(c.o.Interval)
	defer t.Stop()
	for {
		c.Step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// LastIteration is when the loop last finished a poll (whatever the BMC
// said): a liveness signal for the watchdog.
func (c *Collector) LastIteration() time.Time {
	n := c.lastIter.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Interval is the poll interval in force.
func (c *Collector) Interval() time.Duration { return c.o.Interval }

// Step runs one poll: (re)connect if needed, discover if needed, read,
// judge, swap the snapshot in and emit events.
func (c *Collector) Step(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.o.Clock.Now()
	defer func() {
		c.lastIter.Store(c.o.Clock.Now().UnixNano())
		if c.o.Beat != nil {
			c.o.Beat()
		}
	}()

	var evs []events.Event
	readings, attempted, err := c.poll(ctx, start)
	now := c.o.Clock.Now()
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: not the BMC's fault
		}
		if attempted {
			evs = c.setBMC(false, err.Error(), now, evs)
			c.markDown()
		} else {
			err = errors.New(c.bmcErr) // waiting to reconnect: the last failure stands
		}
	} else {
		c.lastOK = now
		evs = c.setBMC(true, "", now, evs)
	}
	evs = c.judge(readings, err, now, evs)
	evs = c.rollups(err, now, evs)
	// The snapshot goes first, so readers see a change without waiting
	// for the disk; each event is then persisted (fsync) before it is
	// published, so a subscriber that reads the snapshot after an event
	// sees its state, and nothing acts on an event that could be lost.
	c.publish(start, now)
	for _, ev := range evs {
		stored, err := c.o.Emitter.Emit(ev)
		if err != nil {
			c.log.Error("event not persisted", "err", err, "source", ev.Source)
		}
		level := slog.LevelInfo
		if ev.To == health.Critical || ev.To == health.Unavailable {
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, ev.Message, "event", stored.Seq, "kind", ev.Kind, "source", ev.Source)
	}
}

// poll returns the readings of the present sensors, in c.present order.
// attempted is false when it did not talk to the BMC because a reconnect
// is not due yet.
func (c *Collector) poll(ctx context.Context, now time.Time) (rs []bmc.Reading, attempted bool, err error) {
	if c.bmcKnown && !c.bmcUp && now.Before(c.nextDial) {
		return nil, false, errWaiting
	}
	rs, err = c.pollBMC(ctx)
	return rs, true, err
}

var errWaiting = errors.New("waiting to reconnect")

func (c *Collector) pollBMC(ctx context.Context) ([]bmc.Reading, error) {
	if c.client == nil {
		cl, err := c.o.Dial(ctx)
		if err != nil {
			return nil, fmt.Errorf("connect to BMC: %w", err)
		}
		c.client = cl
		c.discovered = false
		c.log.Info("BMC connected", "transport", cl.Transport())
	}
	now := c.o.Clock.Now()
	if c.discovered && !now.Before(c.nextSDR) {
		c.nextSDR = now.Add(c.o.SDRCheck)
		if w, ok := c.client.(bmc.SDRWatcher); ok {
			changed, err := w.SDRChanged(ctx)
			if err != nil {
				return nil, fmt.Errorf("check SDR repository: %w", err)
			}
			if changed {
				c.log.Info("BMC sensor repository changed: rediscovering")
				c.discovered = false
			}
		}
	}
	if !c.discovered {
		defs, err := c.client.Sensors(ctx)
		if err != nil {
			return nil, fmt.Errorf("discover sensors: %w", err)
		}
		c.discover(defs)
		c.discovered = true
		c.nextSDR = now.Add(c.o.SDRCheck)
	}
	if len(c.defs) == 0 {
		return nil, nil
	}
	rs, err := c.client.Read(ctx, c.defs)
	if err != nil {
		return nil, fmt.Errorf("read sensors: %w", err)
	}
	if len(rs) != len(c.defs) {
		return nil, fmt.Errorf("read sensors: %d readings for %d sensors", len(rs), len(c.defs))
	}
	return rs, nil
}

// markDown schedules the next reconnect and drops the client when it can
// be re-dialled.
func (c *Collector) markDown() {
	if c.backoff == 0 {
		c.backoff = c.o.MinBackoff
	} else {
		c.backoff = min(c.backoff*2, c.o.MaxBackoff)
	}
	c.nextDial = c.o.Clock.Now().Add(c.backoff)
	if c.o.Dial != nil && c.client != nil {
		c.client.Close()
		c.client = nil
	}
}

// discover matches the BMC's sensors with the config, keeping the state
// of sensors already known.
func (c *Collector) discover(defs []bmc.SensorDef) {
	old := make(map[string]*entry, len(c.entries))
	for _, e := range c.entries {
		old[e.def.ID] = e
	}
	byName := make(map[string]bool, len(defs))
	var es []*entry
	for _, d := range defs {
		byName[d.Name] = true
		cfg := c.cfg.Sensor(d.Name)
		e := old[d.ID]
		if e == nil || e.missing {
			e = &entry{}
		}
		e.def, e.cfg, e.missing = d, cfg, false
		e.th = health.Effective(d, cfg)
		e.sub = health.SubsystemOf(d, cfg)
		e.debounce = c.cfg.SensorDebounce(cfg)
		es = append(es, e)
	}
	for i := range c.cfg.Sensors {
		s := &c.cfg.Sensors[i]
		if byName[s.Name] || !s.IsRequired() {
			continue
		}
		id := MissingID(s.Name)
		e := old[id]
		if e == nil {
			e = &entry{}
		}
		e.def = bmc.SensorDef{ID: id, Name: s.Name, Class: bmc.ClassOther}
		e.cfg, e.missing = s, true
		e.sub = health.SubsystemOf(e.def, s)
		es = append(es, e)
		c.log.Warn("required sensor not found on the BMC", "sensor", s.Name)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].def.ID < es[j].def.ID })
	c.entries = es
	c.defs, c.present = c.defs[:0], c.present[:0]
	for _, e := range es {
		if !e.missing {
			c.defs = append(c.defs, e.def)
			c.present = append(c.present, e)
		}
	}
	c.log.Info("sensors discovered", "bmc", len(defs), "tracked", len(es))
}

// MissingID is the sensor id given to a required config sensor that the
// BMC does not expose.
func MissingID(name string) string { return "missing-" + name }

func (c *Collector) origin(id string) string {
	return "/redfish/v1/Chassis/" + c.cfg.Board.ID + "/Sensors/" + id
}

// judge evaluates every sensor from this poll's readings (or the BMC's
// failure) and appends sensor events.
func (c *Collector) judge(rs []bmc.Reading, bmcErr error, now time.Time, evs []events.Event) []events.Event {
	for i, e := range c.present {
		var r bmc.Reading
		debounce := e.debounce
		if bmcErr != nil {
			// The whole BMC is gone: every reading is unknown now.
			r = bmc.Reading{ID: e.def.ID, Time: now, Err: "BMC unreachable: " + bmcErr.Error()}
			debounce = 1
		} else {
			r = rs[i]
			if !r.Available {
				e.failN++
				if e.failN < c.o.UnavailableAfter && e.st.Known() {
					// Keep the last reading for now: one dropped
					// request is not an alarm.
					continue
				}
			} else {
				e.failN = 0
			}
		}
		e.last = r
		n := len(evs)
		evs = c.evaluate(e, health.Input{Def: e.def, Reading: r, Cfg: e.cfg}, debounce, now, evs)
		if bmcErr != nil && len(evs) > n {
			evs[n].Data[CauseKey] = CauseBMCUnreachable
		}
	}
	for _, e := range c.entries {
		if e.missing {
			e.last = bmc.Reading{ID: e.def.ID, Time: now, Err: "not found on the BMC"}
			evs = c.evaluate(e, health.Missing(e.cfg), 1, now, evs)
		}
	}
	return evs
}

func (c *Collector) evaluate(e *entry, in health.Input, debounce int, now time.Time, evs []events.Event) []events.Event {
	prev := e.st
	next, changed := health.Evaluate(prev, in, e.th, debounce, now)
	e.st = next
	if changed {
		evs = append(evs, c.sensorEvent(e, prev.State, next, in.Reading, now))
	}
	return evs
}

func (c *Collector) sensorEvent(e *entry, from health.State, next health.SensorState, r bmc.Reading, now time.Time) events.Event {
	msg := fmt.Sprintf("Sensor %s changed from %s to %s", e.def.Name, from, next.State)
	if next.Reason != "" {
		msg += ": " + next.Reason
	}
	data := map[string]string{
		"name":         e.def.Name,
		"subsystem":    string(e.sub),
		"sensor_type":  strconv.Itoa(int(e.def.SensorType)),
		"sensor_num":   strconv.Itoa(int(e.def.Number)),
		"reading_type": strconv.Itoa(int(e.def.ReadingType)),
	}
	if r.Available {
		if e.def.Kind == bmc.KindDiscrete {
			data["state"] = "0x" + strconv.FormatUint(uint64(r.State), 16)
		} else {
			data["reading"] = strconv.FormatFloat(r.Value, 'f', -1, 64)
			data["unit"] = string(e.def.Unit)
		}
	}
	return events.Event{
		Time: now, Kind: events.KindSensor, Source: e.def.ID,
		Severity: next.State, From: from, To: next.State,
		Message:   msg + ".",
		MessageID: messageID(next.State), MessageArgs: statusArgs(e.def.Name, next.State),
		Origin: c.origin(e.def.ID), Data: data,
	}
}

// CauseKey in a sensor event's Data says why it changed when the sensor
// itself is not the cause: CauseBMCUnreachable when the whole BMC stopped
// answering (sinks that write to the BMC skip those).
const (
	CauseKey            = "cause"
	CauseBMCUnreachable = "bmc-unreachable"
)

// DMTF ResourceEvent registry messages the collector's events use (the
// events package owns them).
const (
	MsgStatusChangedOK       = events.MsgStatusChangedOK
	MsgStatusChangedWarning  = events.MsgStatusChangedWarning
	MsgStatusChangedCritical = events.MsgStatusChangedCritical
	MsgErrorsDetected        = events.MsgErrorsDetected
	MsgErrorsCorrected       = events.MsgErrorsCorrected
)

func messageID(s health.State) string { return events.StatusMessageID(s) }

func statusArgs(name string, s health.State) []string {
	if s == health.Unavailable {
		return []string{name, "ReadingUnavailable"}
	}
	return []string{name, s.String()}
}

// BMCOrigin is the Redfish URI boardd's BMC events point at.
const BMCOrigin = "/redfish/v1/Managers/boardd"

func (c *Collector) setBMC(up bool, why string, now time.Time, evs []events.Event) []events.Event {
	wasKnown, was := c.bmcKnown, c.bmcUp
	c.bmcKnown, c.bmcUp, c.bmcErr = true, up, why
	if up {
		c.backoff = 0
	}
	if wasKnown && was == up || !wasKnown && up {
		return evs
	}
	ev := events.Event{
		Time: now, Kind: events.KindBMC, Source: "bmc", Origin: BMCOrigin,
		Data: map[string]string{"transport": c.transport()},
	}
	if up {
		c.log.Info("BMC connection regained")
	} else {
		c.log.Warn("BMC connection lost", "err", why)
	}
	if up {
		ev.Severity, ev.From, ev.To = health.OK, health.Unavailable, health.OK
		ev.Message = "BMC connection regained."
		ev.MessageID, ev.MessageArgs = MsgErrorsCorrected, []string{"BMC", "Communication"}
	} else {
		ev.Severity, ev.From, ev.To = health.Critical, health.OK, health.Unavailable
		ev.Message = "BMC connection lost: " + why + "."
		ev.MessageID, ev.MessageArgs = MsgErrorsDetected, []string{"BMC", "Communication"}
	}
	return append(evs, ev)
}

func (c *Collector) transport() string {
	if c.client != nil {
		c.o.Transport = c.client.Transport()
	}
	return c.o.Transport
}

// rollups recomputes subsystem and board states and appends their events.
func (c *Collector) rollups(bmcErr error, now time.Time, evs []events.Event) []events.Event {
	views := c.views[:0]
	for _, e := range c.entries {
		views = append(views, health.SensorView{
			Name: e.def.Name, Subsystem: e.sub, State: e.st.State, Reason: e.st.Reason,
		})
	}
	c.views = views
	groups := health.Subsystems(views)
	next := make(map[health.Subsystem]snapshot.Rollup, len(groups))
	members := make([]health.Member, 0, len(groups))
	for sub, m := range groups {
		members = append(members, m)
		r := snapshot.Rollup{State: m.State, Reason: m.Reason, Since: now}
		p, ok := c.subs[sub]
		if ok && p.State == m.State {
			r.Since = p.Since
		} else if ok || m.State != health.OK {
			evs = append(evs, c.subsystemEvent(sub, p.State, m.State, m.Reason, now))
		}
		next[sub] = r
	}
	for sub, p := range c.subs {
		if _, ok := next[sub]; !ok && p.State != health.OK {
			evs = append(evs, c.subsystemEvent(sub, p.State, health.OK, "no sensors any more", now))
		}
	}
	c.subs = next
	for sub := range next {
		c.owned[sub] = true
	}
	// Subsystems other sources publish (the fabric's) count in the board.
	for sub, r := range c.foreign(c.o.Store.Load()) {
		members = append(members, health.Member{Name: string(sub), State: r.State, Reason: r.Reason})
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	state, why := health.Board(bmcErr, members...)
	prev, known := c.board, c.boardKnown
	c.board = snapshot.Rollup{State: state, Reason: why, Since: now}
	c.boardKnown = true
	if known && prev.State == state {
		c.board.Since = prev.Since
	} else if known || state != health.OK {
		evs = append(evs, events.Event{
			Time: now, Kind: events.KindBoard, Source: c.cfg.Board.ID,
			Severity: state, From: prev.State, To: state,
			Message:   fmt.Sprintf("Board %s changed from %s to %s%s.", c.cfg.Board.ID, prev.State, state, because(why)),
			MessageID: messageID(state), MessageArgs: []string{c.cfg.Board.ID, state.String()},
			Origin: "/redfish/v1/Chassis/" + c.cfg.Board.ID,
		})
	}
	return evs
}

func (c *Collector) subsystemEvent(sub health.Subsystem, from, to health.State, why string, now time.Time) events.Event {
	return events.Event{
		Time: now, Kind: events.KindSubsystem, Source: string(sub),
		Severity: to, From: from, To: to,
		Message:   fmt.Sprintf("Subsystem %s changed from %s to %s%s.", sub, from, to, because(why)),
		MessageID: messageID(to), MessageArgs: []string{string(sub), to.String()},
		Origin: c.subsystemOrigin(sub),
	}
}

func because(why string) string {
	if why == "" {
		return ""
	}
	return ": " + why
}

func (c *Collector) subsystemOrigin(sub health.Subsystem) string {
	base := "/redfish/v1/Chassis/" + c.cfg.Board.ID
	switch sub {
	case health.Power, health.Fuses:
		return base + "/PowerSubsystem"
	case health.Thermal, health.Cooling:
		return base + "/ThermalSubsystem"
	case health.Fabric:
		return "/redfish/v1/Fabrics"
	}
	return base
}

// foreign returns the subsystems of the current snapshot that another
// source (the fabric watcher) publishes.
func (c *Collector) foreign(cur *snapshot.Snapshot) map[health.Subsystem]snapshot.Rollup {
	if cur == nil {
		return nil
	}
	var out map[health.Subsystem]snapshot.Rollup
	for sub, r := range cur.Subsystems {
		if !c.owned[sub] {
			if out == nil {
				out = map[health.Subsystem]snapshot.Rollup{}
			}
			out[sub] = r
		}
	}
	return out
}

// publish builds the new snapshot and swaps it in. Fields and subsystems
// that other sources own are carried over from the current snapshot.
func (c *Collector) publish(start, now time.Time) {
	c.o.Store.Update(func(cur *snapshot.Snapshot) *snapshot.Snapshot { return c.build(cur, start, now) })
}

func (c *Collector) build(cur *snapshot.Snapshot, start, now time.Time) *snapshot.Snapshot {
	n := &snapshot.Snapshot{}
	if cur != nil {
		*n = *cur // keep fields other sources own
	}
	c.seq++
	if cur != nil && cur.Seq >= c.seq {
		c.seq = cur.Seq + 1
	}
	n.Seq, n.Time = c.seq, now
	n.Board.ID, n.Board.Model, n.Board.Slot = c.cfg.Board.ID, c.cfg.Board.Model, c.cfg.Board.Slot
	n.BMC = snapshot.BMC{Up: c.bmcUp, Transport: c.transport(), Err: c.bmcErr, LastOK: c.lastOK}
	sensors := make([]snapshot.Sensor, len(c.entries))
	for i, e := range c.entries {
		sensors[i] = snapshot.Sensor{
			Def: e.def, Reading: e.last, Thresholds: e.th, Subsystem: e.sub,
			State: e.st.State, Reason: e.st.Reason, Since: e.st.Since,
		}
	}
	n.Sensors = sensors
	foreign := c.foreign(cur)
	subs := make(map[health.Subsystem]snapshot.Rollup, len(c.subs)+len(foreign))
	for k, v := range foreign {
		subs[k] = v
	}
	for k, v := range c.subs {
		subs[k] = v
	}
	n.Subsystems = subs
	n.Health = c.board
	n.CollectDuration = now.Sub(start)
	return n
}
