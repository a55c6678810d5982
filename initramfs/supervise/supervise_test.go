package supervise

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestBackoffNext(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 8 * time.Second, Reset: 30 * time.Second}
	tests := []struct {
		name      string
		prev, ran time.Duration
		want      time.Duration
	}{
		{"first restart", 0, time.Second, time.Second},
		{"doubles on a quick crash", time.Second, time.Second, 2 * time.Second},
		{"capped", 8 * time.Second, time.Second, 8 * time.Second},
		{"cap not overshot", 5 * time.Second, 0, 8 * time.Second},
		{"long run resets", 8 * time.Second, 31 * time.Second, time.Second},
	}
	for _, tt := range tests {
		if got := b.Next(tt.prev, tt.ran); got != tt.want {
			t.Errorf("%s: Next(%v, %v) = %v, want %v", tt.name, tt.prev, tt.ran, got, tt.want)
		}
	}
	if got := (Backoff{}).Next(0, 0); got != 500*time.Millisecond {
		t.Errorf("default min = %v", got)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached in 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A real process that is killed is started again with a new pid, its
// output reaches the writer, and cancelling stops it.
func TestRunRestartsKilledProcess(t *testing.T) {
	out := &syncBuf{}
	var mu sync.Mutex
	var pids []int
	s := &Service{
		Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "echo started $$; exec sleep 60"},
		Output:  out,
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 40 * time.Millisecond},
		OnStart: func(pid int) { mu.Lock(); pids = append(pids, pid); mu.Unlock() },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	nPids := func() int { mu.Lock(); defer mu.Unlock(); return len(pids) }
	waitFor(t, "first start", func() bool { return nPids() == 1 })
	mu.Lock()
	first := pids[0]
	mu.Unlock()
	waitFor(t, "first output", func() bool { return strings.Contains(out.String(), "started "+strconv.Itoa(first)) })
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart", func() bool { return nPids() == 2 })
	mu.Lock()
	second := pids[1]
	mu.Unlock()
	if second == first {
		t.Fatal("same pid after restart")
	}
	waitFor(t, "second output", func() bool { return strings.Contains(out.String(), "started "+strconv.Itoa(second)) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(second, 0); err == nil {
		t.Fatal("process still running after stop")
	}
}

func TestRunEscalatesToKill(t *testing.T) {
	var pid int
	var mu sync.Mutex
	s := &Service{
		Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"},
		StopGrace: 200 * time.Millisecond,
		OnStart:   func(p int) { mu.Lock(); pid = p; mu.Unlock() },
	}
	out := &syncBuf{}
	s.Output = out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatal("SIGTERM-ignoring process survived stop")
	}
}

func TestRunNoPath(t *testing.T) {
	if err := (&Service{Name: "x"}).Run(context.Background()); err == nil {
		t.Fatal("no error for a service without a path")
	}
}

func TestLogFileRotates(t *testing.T) {
	p := filepath.Join(t.TempDir(), "boardd.log")
	l, err := OpenLogFile(p, 100)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 39) + "\n") // 40 bytes
	for i := 0; i < 7; i++ {
		if _, err := l.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(p)
	old, _ := os.ReadFile(p + ".1")
	// 7 lines of 40 with max 100: files of 2,2,2 lines, then 1; the two
	// newest are kept.
	if len(cur) != 40 || len(old) != 80 {
		t.Fatalf("current %d bytes, previous %d bytes; want 40 and 80", len(cur), len(old))
	}
	if _, err := OpenLogFile(p, 0); err == nil {
		t.Fatal("max 0 accepted")
	}
	if _, err := l.Write(line); err == nil {
		t.Fatal("write after close accepted")
	}
}
