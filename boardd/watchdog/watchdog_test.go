package watchdog

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeDev struct {
	mu            sync.Mutex
	timeout       time.Duration
	pets          int
	magic, closed bool
	setErr        error
}

func (f *fakeDev) SetTimeout(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timeout = d
	return f.setErr
}
func (f *fakeDev) KeepAlive() error { f.mu.Lock(); f.pets++; f.mu.Unlock(); return nil }
func (f *fakeDev) MagicClose() error {
	f.mu.Lock()
	f.magic = true
	f.mu.Unlock()
	return nil
}
func (f *fakeDev) Close() error { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }
func (f *fakeDev) petCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pets
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunPetsOnlyWhileHealthyAndMagicClosesOnShutdown(t *testing.T) {
	dev := &fakeDev{}
	var healthy atomic.Bool
	healthy.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{
			Path: "/dev/watchdog0", Timeout: 3 * time.Second, Interval: 10 * time.Millisecond,
			Healthy: healthy.Load,
			Open:    func(string) (Device, error) { return dev, nil },
		})
	}()
	waitFor(t, func() bool { return dev.petCount() >= 3 })
	healthy.Store(false)
	time.Sleep(30 * time.Millisecond) // let an in-flight pet land
	n := dev.petCount()
	time.Sleep(100 * time.Millisecond)
	if got := dev.petCount(); got != n {
		t.Fatalf("petted %d times while unhealthy", got-n)
	}
	healthy.Store(true)
	waitFor(t, func() bool { return dev.petCount() > n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if dev.timeout != 3*time.Second || !dev.magic {
		t.Fatalf("timeout %v magic %v", dev.timeout, dev.magic)
	}
}

func TestRunErrors(t *testing.T) {
	openErr := errors.New("no such device")
	tests := []struct {
		name string
		cfg  Config
		dev  *fakeDev
	}{
		{"no path", Config{}, nil},
		{"interval not under timeout", Config{Path: "x", Timeout: 2 * time.Second, Interval: 2 * time.Second}, nil},
		{"sub-second timeout", Config{Path: "x", Timeout: 500 * time.Millisecond}, nil},
		{"open fails", Config{Path: "x", Open: func(string) (Device, error) { return nil, openErr }}, nil},
		{"set timeout fails", Config{Path: "x"}, &fakeDev{setErr: errors.New("EINVAL")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if tt.dev != nil {
				cfg.Open = func(string) (Device, error) { return tt.dev, nil }
			}
			if cfg.Open == nil {
				cfg.Open = func(string) (Device, error) { t.Fatal("opened"); return nil, nil }
			}
			if err := Run(context.Background(), cfg); err == nil {
				t.Fatal("no error")
			}
			if tt.dev != nil && (!tt.dev.closed || tt.dev.magic) {
				t.Fatalf("device closed=%v magic=%v: want closed armed", tt.dev.closed, tt.dev.magic)
			}
		})
	}
}

func TestHeartbeats(t *testing.T) {
	now := time.Unix(1000, 0)
	hb := NewHeartbeats(func() time.Time { return now })
	if !hb.Healthy() {
		t.Fatal("empty tracker unhealthy")
	}
	col := hb.Register("collector", 5*time.Second)
	hb.Register("api", 10*time.Second)
	now = now.Add(6 * time.Second)
	if hb.Healthy() || len(hb.Stale()) != 1 || hb.Stale()[0] != "collector" {
		t.Fatalf("stale = %v", hb.Stale())
	}
	col.Beat()
	if !hb.Healthy() {
		t.Fatalf("stale after beat = %v", hb.Stale())
	}
	now = now.Add(5 * time.Second) // api now 11 s old
	if got := hb.Stale(); len(got) != 1 || got[0] != "api" {
		t.Fatalf("stale = %v", got)
	}
	hb.Unregister("api")
	if !hb.Healthy() {
		t.Fatal("unregistered loop still counted")
	}
}
