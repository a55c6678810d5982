package events

import (
	"errors"
	"testing"
	"time"
)

type failingLog struct{ MemLog }

func (*failingLog) Append(Event) (Event, error) { return Event{}, errors.New("disk full") }

func TestEmitterPersistsThenPublishes(t *testing.T) {
	log := &MemLog{Now: func() time.Time { return time.Unix(100, 0) }}
	bus := NewBus()
	sub := bus.Subscribe(4)
	e := &Emitter{Log: log, Bus: bus}
	ev, err := e.Emit(Event{Kind: KindService, Message: "hello"})
	if err != nil || ev.Seq != 1 || !ev.Time.Equal(time.Unix(100, 0)) {
		t.Fatalf("Emit = %+v, %v", ev, err)
	}
	got := <-sub.C
	if got.Seq != 1 || got.Message != "hello" {
		t.Errorf("published %+v", got)
	}
	if l, _ := log.List(0, 0); len(l) != 1 || l[0].Seq != 1 {
		t.Errorf("log %+v", l)
	}
}

func TestEmitterPublishesWhenTheLogFails(t *testing.T) {
	bus := NewBus()
	sub := bus.Subscribe(4)
	e := &Emitter{Log: &failingLog{}, Bus: bus}
	if _, err := e.Emit(Event{Kind: KindSensor, Source: "x", Message: "leak"}); err == nil {
		t.Fatal("no error from a failing log")
	}
	got := <-sub.C
	if got.Seq != 0 || got.Message != "leak" || got.Time.IsZero() {
		t.Errorf("published %+v", got)
	}
}

func TestMemLogList(t *testing.T) {
	l := &MemLog{}
	for i := 0; i < 5; i++ {
		l.Append(Event{Kind: KindService})
	}
	for _, tc := range []struct {
		after       uint64
		limit       int
		first, last uint64
		n           int
	}{{0, 0, 1, 5, 5}, {2, 0, 3, 5, 3}, {2, 2, 3, 4, 2}, {5, 0, 0, 0, 0}} {
		got, _ := l.List(tc.after, tc.limit)
		if len(got) != tc.n || (tc.n > 0 && (got[0].Seq != tc.first || got[len(got)-1].Seq != tc.last)) {
			t.Errorf("List(%d, %d) = %+v", tc.after, tc.limit, got)
		}
	}
}

func TestBusDropsForSlowSubscriber(t *testing.T) {
	bus := NewBus()
	slow := bus.Subscribe(1)
	bus.Publish(Event{Seq: 1})
	bus.Publish(Event{Seq: 2}) // buffer full: dropped, Publish does not block
	if slow.Dropped() != 1 {
		t.Errorf("dropped %d", slow.Dropped())
	}
	slow.Close()
	if _, ok := <-slow.C; !ok {
		t.Error("buffered event lost on close")
	}
	if _, ok := <-slow.C; ok {
		t.Error("channel not closed")
	}
	bus.Publish(Event{Seq: 3}) // no panic after close
}
