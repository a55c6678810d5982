package selsink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
)

func TestRecord(t *testing.T) {
	sensor := func(from, to health.State, data map[string]string) events.Event {
		return events.Event{Kind: events.KindSensor, From: from, To: to, Data: data}
	}
	psu := map[string]string{"sensor_type": "2", "sensor_num": "1", "subsystem": "Power"}
	for _, tc := range []struct {
		name string
		ev   events.Event
		want bmc.SELEvent
		ok   bool
	}{
		{"critical", sensor(health.OK, health.Critical, psu),
			bmc.SELEvent{SensorType: 2, SensorNumber: 1, EventType: 0x70, EventData: [3]byte{2, 0, 1}}, true},
		{"back to ok is a deassertion", sensor(health.Critical, health.OK, map[string]string{"sensor_type": "8", "sensor_num": "10", "subsystem": "Fuses"}),
			bmc.SELEvent{SensorType: 8, SensorNumber: 10, EventType: 0x70, Deassertion: true, EventData: [3]byte{0, 2, 4}}, true},
		{"unavailable, unknown subsystem", sensor(health.Warning, health.Unavailable, map[string]string{"sensor_type": "1", "sensor_num": "16", "subsystem": "x"}),
			bmc.SELEvent{SensorType: 1, SensorNumber: 16, EventType: 0x70, EventData: [3]byte{3, 1, 0xff}}, true},
		{"missing sensor has no IPMI type", sensor(health.OK, health.Critical, map[string]string{"sensor_type": "0", "sensor_num": "0"}), bmc.SELEvent{}, false},
		{"board event", events.Event{Kind: events.KindBoard, To: health.Critical}, bmc.SELEvent{}, false},
		{"no data", events.Event{Kind: events.KindSensor}, bmc.SELEvent{}, false},
		{"sensor unknown because the BMC is gone", sensor(health.OK, health.Unavailable, map[string]string{"sensor_type": "2", "sensor_num": "1", "cause": "bmc-unreachable"}), bmc.SELEvent{}, false},
		{"bad number", sensor(health.OK, health.Critical, map[string]string{"sensor_type": "2", "sensor_num": "300"}), bmc.SELEvent{}, false},
	} {
		got, ok := Record(tc.ev)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: Record = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// flakyWriter fails its first n writes (unit-test fake; the real SEL
// path is tested against ipmi_sim in boardd/daemon).
type flakyWriter struct {
	mu    sync.Mutex
	fails int
	got   []bmc.SELEvent
}

func (f *flakyWriter) Transport() string                                            { return "lan" }
func (f *flakyWriter) Sensors(context.Context) ([]bmc.SensorDef, error)             { return nil, nil }
func (f *flakyWriter) Read(context.Context, []bmc.SensorDef) ([]bmc.Reading, error) { return nil, nil }
func (f *flakyWriter) Close() error                                                 { return nil }
func (f *flakyWriter) AddSEL(ctx context.Context, ev bmc.SELEvent) (uint16, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return 0, errors.New("no reply")
	}
	f.got = append(f.got, ev)
	return uint16(len(f.got)), nil
}

// readOnly is a client without AddSEL.
type readOnly struct{}

func (readOnly) Transport() string                                            { return "redfish" }
func (readOnly) Sensors(context.Context) ([]bmc.SensorDef, error)             { return nil, nil }
func (readOnly) Read(context.Context, []bmc.SensorDef) ([]bmc.Reading, error) { return nil, nil }
func (readOnly) Close() error                                                 { return nil }

func critical(n string) events.Event {
	return events.Event{Seq: 1, Kind: events.KindSensor, To: health.Critical,
		Data: map[string]string{"sensor_type": "2", "sensor_num": n, "subsystem": "Power"}}
}

func TestSinkRetries(t *testing.T) {
	bus := events.NewBus()
	w := &flakyWriter{fails: 2}
	s, err := New(Options{Bus: bus, Client: w, MinBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	bus.Publish(critical("1"))
	bus.Publish(events.Event{Kind: events.KindBoard, To: health.Critical}) // not a sensor: skipped
	bus.Publish(critical("2"))
	deadline := time.Now().Add(10 * time.Second)
	for s.Written() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.got) != 2 || w.got[0].SensorNumber != 1 || w.got[1].SensorNumber != 2 || s.Failed() != 0 {
		t.Fatalf("written %+v, failed %d", w.got, s.Failed())
	}
}

func TestSinkSkipsClientWithoutSELWriter(t *testing.T) {
	bus := events.NewBus()
	var c bmc.Client = readOnly{}
	if _, ok := c.(bmc.SELWriter); ok {
		t.Fatal("test client is a SELWriter")
	}
	s, _ := New(Options{Bus: bus, Client: c, MinBackoff: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	bus.Publish(critical("1"))
	bus.Publish(critical("2"))
	deadline := time.Now().Add(10 * time.Second)
	for !s.noWriter.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if !s.noWriter.Load() || s.Written() != 0 || s.Failed() != 0 {
		t.Fatalf("noWriter %v written %d failed %d", s.noWriter.Load(), s.Written(), s.Failed())
	}
}
