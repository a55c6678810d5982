package workloads_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/fakeruntime"
)

func run(t *testing.T, opt workloads.Options) (*workloads.Manager, func()) {
	t.Helper()
	opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opt.BackoffBase = 10 * time.Millisecond
	opt.Poll = 50 * time.Millisecond
	m, err := workloads.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return m, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(calls []string, c string) int {
	n := 0
	for _, x := range calls {
		if x == c {
			n++
		}
	}
	return n
}

func TestAppliesSurviveRestart(t *testing.T) {
	rt := fakeruntime.New()
	dir := t.TempDir()
	config := []workloads.Spec{{Name: "sentinel", Image: "demo", Priority: "critical"}, {Name: "keep", Image: "demo"}}
	rt.Put("ghost", workloads.TaskSpec{}, workloads.TaskRunning) // left by an older config
	m, stop := run(t, workloads.Options{Runtime: rt, StateDir: dir, Config: config})
	ctx := context.Background()
	if _, created, err := m.Apply(ctx, workloads.Spec{Name: "batch", Image: "demo", Args: []string{"-x"}, Priority: "sheddable"}); err != nil || !created {
		t.Fatalf("apply: %v %v", created, err)
	}
	waitFor(t, "three running", func() bool {
		return rt.State("batch") == workloads.TaskRunning && rt.State("sentinel") == workloads.TaskRunning && rt.State("keep") == workloads.TaskRunning
	})
	waitFor(t, "orphan removed", func() bool { return count(rt.Calls(), "remove ghost") == 1 })
	if err := m.Delete(ctx, "sentinel"); err != nil {
		t.Fatal(err)
	}
	if rt.State("sentinel") != workloads.TaskAbsent {
		t.Fatal("sentinel still has a task after Delete")
	}
	if _, err := m.Get("sentinel"); err == nil {
		t.Fatal("sentinel still listed")
	}
	// The API changed "keep" too: the applied spec overrides the config.
	if _, created, err := m.Apply(ctx, workloads.Spec{Name: "keep", Image: "demo", MemoryMB: 64}); err != nil || created {
		t.Fatalf("re-apply keep: created=%v err=%v", created, err)
	}
	waitFor(t, "keep recreated with the new spec", func() bool { return count(rt.Calls(), "start keep") == 2 })
	stop()

	// boardd restarts: same state dir, same config.
	before := rt.Calls()
	m2, _ := run(t, workloads.Options{Runtime: rt, StateDir: dir, Config: config})
	waitFor(t, "running again", func() bool {
		i, err := m2.Get("batch")
		return err == nil && i.State == workloads.StateRunning
	})
	var got []string
	for _, i := range m2.List() {
		got = append(got, i.Name+"/"+i.Source)
	}
	if !slices.Equal(got, []string{"batch/api", "keep/api"}) {
		t.Fatalf("after restart: %v", got)
	}
	if i, _ := m2.Get("keep"); i.Spec.MemoryMB != 64 {
		t.Errorf("keep lost its applied spec: %+v", i.Spec)
	}
	// The running tasks were reattached, not restarted.
	after := rt.Calls()[len(before):]
	if count(after, "start batch")+count(after, "start keep") != 0 {
		t.Errorf("tasks restarted after a boardd restart: %v", after)
	}
}

func TestRestartPolicies(t *testing.T) {
	rt := fakeruntime.New()
	m, _ := run(t, workloads.Options{Runtime: rt, StateDir: t.TempDir()})
	ctx := context.Background()
	for _, s := range []workloads.Spec{
		{Name: "always", Image: "demo", Restart: "always"},
		{Name: "onfail", Image: "demo", Restart: "on-failure"},
		{Name: "never", Image: "demo", Restart: "never"},
	} {
		if _, _, err := m.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all running", func() bool {
		return rt.State("always") == workloads.TaskRunning && rt.State("onfail") == workloads.TaskRunning && rt.State("never") == workloads.TaskRunning
	})
	rt.Exit("always", 0)
	rt.Exit("onfail", 0)
	rt.Exit("never", 2)
	waitFor(t, "always restarted", func() bool { i, _ := m.Get("always"); return i.Restarts == 1 && i.State == workloads.StateRunning })
	waitFor(t, "onfail stopped", func() bool { i, _ := m.Get("onfail"); return i.State == workloads.StateStopped })
	waitFor(t, "never failed", func() bool { i, _ := m.Get("never"); return i.State == workloads.StateFailed })
	if i, _ := m.Get("never"); i.ExitCode == nil || *i.ExitCode != 2 || i.Restarts != 0 {
		t.Errorf("never: %+v", i)
	}
	// on-failure restarts a failure; a new apply revives a finished one.
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "never", Image: "demo", Restart: "never", Args: []string{"again"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "never started again", func() bool { return rt.State("never") == workloads.TaskRunning })
}

func TestProtectionThroughManager(t *testing.T) {
	rt := fakeruntime.New()
	m, _ := run(t, workloads.Options{Runtime: rt, StateDir: t.TempDir()})
	ctx := context.Background()
	m.Apply(ctx, workloads.Spec{Name: "batch", Image: "demo", Priority: "sheddable", CPU: 2})
	waitFor(t, "running", func() bool { return rt.State("batch") == workloads.TaskRunning })

	if err := m.SetProtection(ctx, "batch", workloads.Protection{Mode: workloads.ModeThrottled, Percent: 25, Reason: "hot"}); err != nil {
		t.Fatal(err)
	}
	if c := rt.CPU("batch"); c != 0.5 {
		t.Errorf("throttled cpu %g, want 0.5 (25%% of 2)", c)
	}
	if i, _ := m.Get("batch"); i.Protection != "throttled" || i.ThrottlePc != 25 || i.ShedReason != "hot" {
		t.Errorf("info %+v", i)
	}
	if err := m.SetProtection(ctx, "batch", workloads.Protection{Mode: workloads.ModeFrozen, Reason: "power"}); err != nil {
		t.Fatal(err)
	}
	if rt.State("batch") != workloads.TaskPaused {
		t.Fatal("not paused")
	}
	if c := rt.CPU("batch"); c != 2 {
		t.Errorf("frozen keeps its own cpu: %g", c)
	}
	if err := m.SetProtection(ctx, "batch", workloads.Protection{Mode: workloads.ModeStopped, Reason: "fuse"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // several worker passes: it must not restart
	if rt.State("batch") != workloads.TaskAbsent {
		t.Fatalf("stopped workload is %s", rt.State("batch"))
	}
	if i, _ := m.Get("batch"); i.State != workloads.StateStopped || i.Restarts != 0 {
		t.Errorf("stopped info %+v", i)
	}
	if err := m.SetProtection(ctx, "batch", workloads.Protection{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "started again", func() bool { return rt.State("batch") == workloads.TaskRunning })
	if i, _ := m.Get("batch"); i.Restarts != 0 || i.Protection != "" {
		t.Errorf("restored info %+v (a policy stop is not a restart)", i)
	}
	if n := count(rt.Calls(), "start batch"); n != 2 {
		t.Errorf("%d starts", n)
	}
}

func TestCorruptStateKeptAside(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "workloads.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := workloads.New(workloads.Options{Runtime: fakeruntime.New(), StateDir: dir,
		Config: []workloads.Spec{{Name: "sentinel", Image: "demo"}}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if l := m.List(); len(l) != 1 || l[0].Name != "sentinel" {
		t.Errorf("workloads %+v", l)
	}
	kept, _ := filepath.Glob(filepath.Join(dir, "workloads.json.corrupt-*"))
	if len(kept) != 1 {
		t.Fatalf("bad file not kept: %v", kept)
	}
	if b, _ := os.ReadFile(kept[0]); string(b) != "{not json" {
		t.Errorf("kept %q", b)
	}
}
