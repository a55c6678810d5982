package workloads

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
)

// DefaultHold is how long the board must be healthy before protection is
// lifted when the policy does not say.
const DefaultHold = 30 * time.Second

// ProtectorConfig wires a Protector.
type ProtectorConfig struct {
	Manager *Manager
	Policy  boardconfig.Policy
	// Roles maps a sensor name to its role (from the board config's
	// sensors), for rules that select by role.
	Roles map[string]boardconfig.Role
	// Store is the snapshot store (health roll-ups); Bus carries health
	// events (sensor and subsystem changes) that are acted on as soon as
	// they are published. Either may be nil.
	Store  *snapshot.Store
	Bus    *events.Bus
	Now    func() time.Time
	Logger *slog.Logger
	// Beat, if set, is called at every pass (at least once a second): a
	// watchdog heartbeat for the protection loop.
	Beat func()
	// StepTimeout bounds one protective action (default 10 s).
	StepTimeout time.Duration
}

// Protector applies the policy rules to the workloads: it watches health
// and freezes, stops or throttles workloads by priority, then restores
// them once the board has been healthy for the hold time.
type Protector struct {
	cfg  ProtectorConfig
	log  *slog.Logger
	hold time.Duration

	sub     *events.Subscription // taken in NewProtector so no event published after it is missed
	view    HealthView
	mem     ShedMemory
	matched map[string]bool // rule names matching at the last pass
}

// NewProtector returns a Protector; Run starts it.
func NewProtector(cfg ProtectorConfig) *Protector {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 10 * time.Second
	}
	hold := cfg.Policy.Hold.Duration
	if hold <= 0 {
		hold = DefaultHold
	}
	p := &Protector{cfg: cfg, log: cfg.Logger.With("component", "protector"), hold: hold,
		view: HealthView{Subsystems: map[health.Subsystem]health.State{}}, matched: map[string]bool{}}
	if cfg.Bus != nil {
		p.sub = cfg.Bus.Subscribe(256)
	}
	return p
}

// ViewFromSnapshot is the health the rules see in a snapshot.
func ViewFromSnapshot(s *snapshot.Snapshot, roles map[string]boardconfig.Role) HealthView {
	v := HealthView{Subsystems: map[health.Subsystem]health.State{}}
	if s == nil {
		return v
	}
	for sub, r := range s.Subsystems {
		v.Subsystems[sub] = r.State
	}
	for _, x := range s.Sensors {
		v.Sensors = append(v.Sensors, SensorHealth{ID: x.Def.ID, Name: x.Def.Name, Role: roles[x.Def.Name], State: x.State})
	}
	return v
}

// ApplyEvent updates a view with a health event (sensor or subsystem
// change); other events leave it as it is. It reports whether it changed.
func (v *HealthView) ApplyEvent(ev events.Event, roles map[string]boardconfig.Role) bool {
	switch ev.Kind {
	case events.KindSubsystem:
		if v.Subsystems == nil {
			v.Subsystems = map[health.Subsystem]health.State{}
		}
		sub := health.Subsystem(ev.Source)
		if old, ok := v.Subsystems[sub]; ok && old == ev.To {
			return false
		}
		v.Subsystems[sub] = ev.To
		return true
	case events.KindSensor:
		for i := range v.Sensors {
			if v.Sensors[i].ID == ev.Source || v.Sensors[i].Name == ev.Source {
				if v.Sensors[i].State == ev.To {
					return false
				}
				v.Sensors[i].State = ev.To
				return true
			}
		}
		name := ev.Source
		if n := ev.Data["name"]; n != "" {
			name = n
		}
		v.Sensors = append(v.Sensors, SensorHealth{ID: ev.Source, Name: name, Role: roles[name], State: ev.To})
		return true
	}
	return false
}

// Run watches health until ctx ends.
func (p *Protector) Run(ctx context.Context) error {
	var evC <-chan events.Event
	if p.sub != nil {
		defer p.sub.Close()
		evC = p.sub.C
	}
	var changed <-chan struct{}
	if p.cfg.Store != nil {
		changed = p.cfg.Store.Changed()
		p.view = ViewFromSnapshot(p.cfg.Store.Load(), p.cfg.Roles)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if p.cfg.Beat != nil {
			p.cfg.Beat()
		}
		next := p.Evaluate(ctx)
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-changed:
			changed = p.cfg.Store.Changed()
			p.view = ViewFromSnapshot(p.cfg.Store.Load(), p.cfg.Roles)
		case ev, ok := <-evC:
			if !ok {
				evC = nil
				break
			}
			p.view.ApplyEvent(ev, p.cfg.Roles)
		drain: // take every queued event before acting once
			for {
				select {
				case ev, ok := <-evC:
					if !ok {
						evC = nil
						break drain
					}
					p.view.ApplyEvent(ev, p.cfg.Roles)
				default:
					break drain
				}
			}
		case <-tick.C:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// SetView replaces the health the protector sees (tests, or a daemon
// that feeds health itself) and evaluates at once.
func (p *Protector) SetView(ctx context.Context, v HealthView) {
	p.view = v
	p.Evaluate(ctx)
}

// Evaluate decides and applies protection for the current view, and
// returns how soon it should run again (a held action may expire).
// It is not safe to call concurrently with Run.
func (p *Protector) Evaluate(ctx context.Context) time.Duration {
	m := p.cfg.Manager
	now := p.cfg.Now()
	matches := MatchRules(p.cfg.Policy.Rules, p.view)
	seen := map[string]bool{}
	for _, mt := range matches {
		seen[mt.Rule.Name] = true
		if !p.matched[mt.Rule.Name] {
			m.event("policy", health.Warning, fmt.Sprintf("policy rule %s matched: %s; action %s", mt.Rule.Name, mt.Why, mt.Rule.Action),
				"rule-matched", map[string]string{"rule": mt.Rule.Name, "rule_action": mt.Rule.Action, "reason": mt.Why})
		}
	}
	for name := range p.matched {
		if !seen[name] {
			m.event("policy", health.OK, fmt.Sprintf("policy rule %s cleared", name), "rule-cleared", map[string]string{"rule": name})
		}
	}
	p.matched = seen

	refs := m.Refs()
	want, mem := Decide(now, p.hold, matches, p.mem, refs)
	p.mem = mem
	cur := m.Protections()
	for _, s := range Plan(cur, want, refs) {
		sctx, cancel := context.WithTimeout(ctx, p.cfg.StepTimeout)
		err := m.SetProtection(sctx, s.Name, s.To)
		cancel()
		if err != nil {
			p.log.Error("protect workload", "workload", s.Name, "to", s.To.Mode, "err", err)
			continue
		}
		m.workloadEvent(s.Name, stepSeverity(s), stepMessage(s, p.hold), "protect-"+s.To.Mode.String(),
			map[string]string{"from": s.From.Mode.String(), "to": s.To.Mode.String(), "reason": s.To.Reason, "priority": s.Priority})
	}
	next := time.Second
	for _, a := range mem.Actions {
		if !a.Matching {
			if d := a.ClearedAt.Add(p.hold).Sub(now); d > 0 && d < next {
				next = d
			}
		}
	}
	return max(next, 10*time.Millisecond)
}

func stepSeverity(s Step) health.State {
	if s.To.Mode == ModeNone {
		return health.OK
	}
	return health.Warning
}

func stepMessage(s Step, hold time.Duration) string {
	switch s.To.Mode {
	case ModeFrozen:
		return fmt.Sprintf("workload %s (%s) frozen: %s", s.Name, s.Priority, s.To.Reason)
	case ModeStopped:
		return fmt.Sprintf("workload %s (%s) stopped: %s", s.Name, s.Priority, s.To.Reason)
	case ModeThrottled:
		return fmt.Sprintf("workload %s (%s) throttled to %d%% CPU: %s", s.Name, s.Priority, s.To.Percent, s.To.Reason)
	}
	return fmt.Sprintf("workload %s (%s) restored from %s: board healthy for %s", s.Name, s.Priority, s.From.Mode, hold)
}
