// Package selsink writes boardd's health changes to the BMC's System
// Event Log, so the BMC (and whoever reads its SEL with ipmitool) keeps a
// record of what boardd saw even when the host is gone.
//
// The sink subscribes to the event bus and writes from its own goroutine
// through its own BMC connection: a slow or absent BMC never blocks the
// collector. Each write is retried with backoff.
package selsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
)

// EventType is the IPMI event/reading type of boardd's SEL records: the
// first OEM type (0x70-0x7f are OEM, IPMI 2.0 table 42-1). Event data 1
// is the new state (0 OK, 1 Warning, 2 Critical, 3 Unavailable), data 2
// the previous state, data 3 the subsystem (see SubsystemCode).
const EventType = 0x70

// SubsystemCode is event data 3 for a subsystem: Power 1, Thermal 2,
// Cooling 3, Fuses 4, Fabric 5, anything else 0xff.
func SubsystemCode(sub health.Subsystem) byte {
	switch sub {
	case health.Power:
		return 1
	case health.Thermal:
		return 2
	case health.Cooling:
		return 3
	case health.Fuses:
		return 4
	case health.Fabric:
		return 5
	}
	return 0xff
}

// Record turns a sensor event into the SEL record boardd writes. ok is
// false for events that concern no IPMI sensor, and for sensors that went
// Unavailable only because the BMC stopped answering (collector's
// Data["cause"] = "bmc-unreachable").
func Record(ev events.Event) (bmc.SELEvent, bool) {
	if ev.Kind != events.KindSensor || ev.Data == nil {
		return bmc.SELEvent{}, false
	}
	if ev.Data["cause"] == "bmc-unreachable" {
		// The BMC itself is gone: nothing to tell its SEL about the
		// sensors it no longer reports (the BMC event says it all).
		return bmc.SELEvent{}, false
	}
	typ, err1 := strconv.ParseUint(ev.Data["sensor_type"], 10, 8)
	num, err2 := strconv.ParseUint(ev.Data["sensor_num"], 10, 8)
	if err1 != nil || err2 != nil || typ == 0 {
		return bmc.SELEvent{}, false
	}
	sub := SubsystemCode(health.Subsystem(ev.Data["subsystem"]))
	return bmc.SELEvent{
		SensorType:   uint8(typ),
		SensorNumber: uint8(num),
		EventType:    EventType,
		// Back to OK is the condition going away.
		Deassertion: ev.To == health.OK,
		EventData:   [3]byte{byte(ev.To), byte(ev.From), sub},
	}, true
}

// DialFunc opens a BMC connection for the sink.
type DialFunc func(ctx context.Context) (bmc.Client, error)

// Options configure a Sink.
type Options struct {
	Bus *events.Bus
	// Dial opens the sink's own BMC connection when it has something to
	// write (and again after a failure). Client (a bmc.Client or a bare
	// bmc.SELWriter), if set, is used instead and never closed by the sink.
	Dial   DialFunc
	Client any
	// Buffer is the number of events waiting to be written (default 256);
	// beyond it the bus drops events for this sink (counted).
	Buffer int
	// Attempts per record before it is given up (default 8), with a
	// backoff from MinBackoff (default 500ms) doubling to MaxBackoff
	// (default 30s).
	Attempts               int
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	// Beat, if set, is called after every event handled and every
	// BeatEvery (default 30s) while idle: a liveness heartbeat. A record
	// being retried can hold it back for the whole backoff (about a
	// minute with the defaults).
	Beat      func()
	BeatEvery time.Duration
}

// Sink writes health changes to the SEL.
type Sink struct {
	o       Options
	sub     *events.Subscription
	client  any
	written atomic.Uint64
	failed  atomic.Uint64
	// noWriter is set once the client turned out not to be a SELWriter.
	noWriter atomic.Bool
}

// New subscribes to the bus; Run writes.
func New(o Options) (*Sink, error) {
	if o.Bus == nil {
		return nil, errors.New("selsink: no event bus")
	}
	if o.Dial == nil && o.Client == nil {
		return nil, errors.New("selsink: neither a client nor a dial function")
	}
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.Attempts <= 0 {
		o.Attempts = 8
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Beat == nil {
		o.Beat = func() {}
	}
	if o.BeatEvery <= 0 {
		o.BeatEvery = 30 * time.Second
	}
	o.Logger = o.Logger.With("component", "selsink")
	return &Sink{o: o, sub: o.Bus.Subscribe(o.Buffer), client: o.Client}, nil
}

// Written is how many SEL records the sink has added.
func (s *Sink) Written() uint64 { return s.written.Load() }

// Failed is how many events the sink gave up on (or lost to a full buffer).
func (s *Sink) Failed() uint64 { return s.failed.Load() + s.sub.Dropped() }

// Run writes events until ctx is done.
func (s *Sink) Run(ctx context.Context) error {
	defer s.sub.Close()
	defer s.closeClient()
	idle := time.NewTicker(s.o.BeatEvery)
	defer idle.Stop()
	for {
		s.o.Beat()
		select {
		case <-ctx.Done():
			return nil
		case <-idle.C:
		case ev, ok := <-s.sub.C:
			if !ok {
				return nil
			}
			rec, ok := Record(ev)
			if !ok {
				continue
			}
			if s.noWriter.Load() {
				continue
			}
			if err := s.write(ctx, rec); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, errNoSELWriter) {
					s.noWriter.Store(true)
					s.o.Logger.Info("the BMC client cannot write the SEL: health changes are not mirrored there")
					continue
				}
				s.failed.Add(1)
				s.o.Logger.Error("SEL record not written", "event", ev.Seq, "source", ev.Source, "err", err)
			}
		}
	}
}

// write adds one record, retrying with backoff.
func (s *Sink) write(ctx context.Context, rec bmc.SELEvent) error {
	wait := s.o.MinBackoff
	var err error
	for attempt := 1; ; attempt++ {
		var id uint16
		if id, err = s.tryWrite(ctx, rec); err == nil {
			s.written.Add(1)
			s.o.Logger.Debug("SEL record written", "record_id", id, "sensor_type", rec.SensorType, "sensor_num", rec.SensorNumber)
			return nil
		}
		if errors.Is(err, errNoSELWriter) || attempt >= s.o.Attempts {
			return err
		}
		s.o.Logger.Warn("SEL write failed; retrying", "attempt", attempt, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, s.o.MaxBackoff)
	}
}

// ErrNoSELWriter is returned (wrapped) by a writer that turns out not to
// be able to write the SEL: the sink stops trying.
var ErrNoSELWriter = errors.New("the BMC client cannot write the SEL")

var errNoSELWriter = ErrNoSELWriter

func (s *Sink) tryWrite(ctx context.Context, rec bmc.SELEvent) (uint16, error) {
	if s.client == nil {
		c, err := s.o.Dial(ctx)
		if err != nil {
			return 0, fmt.Errorf("selsink: connect: %w", err)
		}
		s.client = c
	}
	w, ok := s.client.(bmc.SELWriter)
	if !ok {
		return 0, errNoSELWriter
	}
	id, err := w.AddSEL(ctx, rec)
	if err != nil {
		s.closeClient() // reconnect next time
		return 0, fmt.Errorf("selsink: add SEL entry: %w", err)
	}
	return id, nil
}

func (s *Sink) closeClient() {
	if c, ok := s.client.(bmc.Client); ok && s.o.Client == nil {
		c.Close()
		s.client = nil
	}
}
