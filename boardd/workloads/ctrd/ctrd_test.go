package ctrd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/ctrd"
	"podos.dev/podos/boardd/workloads/ociarchive"
)

func TestRunsAndLogs(t *testing.T) {
	need(t)
	m, rec := startManager(t, workloads.Options{})
	ctx := context.Background()
	if _, created, err := m.Apply(ctx, workloads.Spec{Name: "logs", Image: env.image, Args: []string{"-every=100ms"}, CPU: 0.5, MemoryMB: 32}); err != nil || !created {
		t.Fatalf("apply: created=%v err=%v", created, err)
	}
	waitFor(t, "heartbeat lines in the log", 60*time.Second, func() bool {
		return strings.Contains(logText(m, "logs"), "heartbeat 3 ")
	})
	if s := state(m, "logs"); s.State != workloads.StateRunning {
		t.Fatalf("state %q, want running (%+v)", s.State, s)
	}
	if !strings.Contains(logText(m, "logs"), "heartbeat: starting") {
		t.Errorf("log lacks the start line:\n%s", logText(m, "logs"))
	}
	if len(rec.find(func(e events.Event) bool { return e.Source == "logs" && e.Data["action"] == "started" })) != 1 {
		t.Errorf("no started event: %+v", rec.evs)
	}
	// A follower sees new lines as they come.
	ring, _ := m.Logs("logs")
	_, c, cancel := ring.Follow(0)
	defer cancel()
	select {
	case l := <-c:
		if !strings.HasPrefix(l.Text, "heartbeat ") || l.Stream != "stdout" {
			t.Errorf("followed line %+v", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no line followed")
	}
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	need(t)
	m, rec := startManager(t, workloads.Options{BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second})
	ctx := context.Background()
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "crash", Image: env.image, Args: []string{"-exit-after=100ms", "-code=3"}, Restart: "on-failure"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three restarts", 90*time.Second, func() bool { return state(m, "crash").Restarts >= 3 })
	exits := rec.find(func(e events.Event) bool { return e.Source == "crash" && e.Data["action"] == "exited" })
	if len(exits) < 3 {
		t.Fatalf("exit events: %d", len(exits))
	}
	// Delays double: 200ms, 400ms, 800ms.
	for i, want := range []string{"restarting in 200ms", "restarting in 400ms", "restarting in 800ms"} {
		if !strings.Contains(exits[i].Message, want) || exits[i].Data["exit_code"] != "3" {
			t.Errorf("exit %d: %q, want %q and code 3", i, exits[i].Message, want)
		}
	}
	if !strings.Contains(logText(m, "crash"), "exiting with code 3") {
		t.Errorf("stderr not in the log:\n%s", logText(m, "crash"))
	}

	// restart: never -> failed with its exit code, no restart.
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "once", Image: env.image, Args: []string{"-exit-after=100ms", "-code=5"}, Restart: "never"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "once failed", 60*time.Second, func() bool { return state(m, "once").State == workloads.StateFailed })
	s := state(m, "once")
	if s.ExitCode == nil || *s.ExitCode != 5 || s.Restarts != 0 {
		t.Fatalf("once: %+v", s)
	}
}

func TestExec(t *testing.T) {
	need(t)
	m, _ := startManager(t, workloads.Options{})
	ctx := context.Background()
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "exec", Image: env.image}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", 60*time.Second, func() bool { return state(m, "exec").State == workloads.StateRunning })
	ectx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	res, err := m.Exec(ectx, "exec", []string{"/heartbeat", "-echo", "hello from exec", "-echo-stderr", "on stderr", "-code", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "hello from exec\n" || res.Stderr != "on stderr\n" || res.ExitCode != 7 {
		t.Fatalf("exec: %+v", res)
	}
	if _, err := m.Exec(ectx, "exec", []string{"/no-such-binary"}); err == nil {
		t.Error("exec of a missing binary succeeded")
	}
}

func TestContainerdKilledWorkloadsRestored(t *testing.T) {
	need(t)
	m, _ := startManager(t, workloads.Options{BackoffBase: 100 * time.Millisecond, Poll: 500 * time.Millisecond})
	ctx := context.Background()
	for _, n := range []string{"survivor", "victim"} {
		if _, _, err := m.Apply(ctx, workloads.Spec{Name: n, Image: env.image, Args: []string{"-every=100ms"}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both running", 60*time.Second, func() bool {
		return state(m, "survivor").State == workloads.StateRunning && state(m, "victim").State == workloads.StateRunning
	})
	st, err := env.rt.Status(ctx, "victim")
	if err != nil {
		t.Fatal(err)
	}
	restarts := env.daemon.Restarts()
	pid := env.daemon.Pid()
	// containerd dies, and one workload dies while it is down.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(int(st.Pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "containerd restarted", 60*time.Second, func() bool {
		return env.daemon.Restarts() > restarts && env.daemon.Pid() != 0 && env.daemon.Pid() != pid
	})
	// The survivor kept running (its shim held it) and still logs; the
	// victim was restarted by its restart policy.
	before := strings.Count(logText(m, "survivor"), "heartbeat ")
	waitFor(t, "victim restarted", 60*time.Second, func() bool {
		s := state(m, "victim")
		return s.Restarts >= 1 && s.State == workloads.StateRunning
	})
	waitFor(t, "survivor still logging", 30*time.Second, func() bool {
		return strings.Count(logText(m, "survivor"), "heartbeat ") > before+3
	})
	if s := state(m, "survivor"); s.State != workloads.StateRunning || s.Restarts != 0 {
		t.Fatalf("survivor: %+v", s)
	}
}

func TestProtectionFreezesSheddableKeepsCritical(t *testing.T) {
	need(t)
	m, rec := startManager(t, workloads.Options{})
	ctx := context.Background()
	specs := []workloads.Spec{
		{Name: "shed-me", Image: env.image, Args: []string{"-every=100ms"}, Priority: "sheddable"},
		{Name: "keep-me", Image: env.image, Args: []string{"-every=100ms"}, Priority: "critical"},
	}
	for _, s := range specs {
		if _, _, err := m.Apply(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both running", 60*time.Second, func() bool {
		return state(m, "shed-me").State == workloads.StateRunning && state(m, "keep-me").State == workloads.StateRunning
	})
	store := snapshot.NewStore()
	bus := events.NewBus()
	hold := 2 * time.Second
	p := workloads.NewProtector(workloads.ProtectorConfig{
		Manager: m, Store: store, Bus: bus,
		Policy: boardconfig.Policy{Hold: boardconfig.Duration{Duration: hold}, Rules: []boardconfig.Rule{
			{Name: "power-critical", When: boardconfig.When{Subsystem: "Power", State: "Critical"}, Action: "shed"},
		}},
	})
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() { defer close(pdone); _ = p.Run(pctx) }()
	defer func() { pcancel(); <-pdone }()

	// Power goes Critical: the event on the bus, as the policy publishes it.
	bus.Publish(workloads.SubsystemEvent(health.Power, health.OK, health.Critical))
	start := time.Now()
	waitFor(t, "sheddable frozen", 30*time.Second, func() bool {
		s, err := env.rt.Status(ctx, "shed-me")
		return err == nil && s.State == workloads.TaskPaused
	})
	t.Logf("fault to frozen: %s", time.Since(start))
	if s := state(m, "shed-me"); s.State != workloads.StatePaused || s.Protection != "frozen" || !strings.Contains(s.ShedReason, "Power is Critical") {
		t.Errorf("shed-me: %+v", s)
	}
	// The frozen one prints nothing; the critical one goes on.
	frozenLines := strings.Count(logText(m, "shed-me"), "heartbeat ")
	keepLines := strings.Count(logText(m, "keep-me"), "heartbeat ")
	waitFor(t, "critical still logging", 30*time.Second, func() bool {
		return strings.Count(logText(m, "keep-me"), "heartbeat ") > keepLines+5
	})
	// At most the line being printed as the freeze landed.
	if n := strings.Count(logText(m, "shed-me"), "heartbeat "); n > frozenLines+1 {
		t.Errorf("frozen workload printed %d lines", n-frozenLines)
	}
	if s, _ := env.rt.Status(ctx, "keep-me"); s.State != workloads.TaskRunning {
		t.Errorf("critical workload %s", s.State)
	}
	frozen := rec.find(func(e events.Event) bool { return e.Source == "shed-me" && e.Data["action"] == "protect-frozen" })
	if len(frozen) != 1 || frozen[0].Severity != health.Warning || !strings.Contains(frozen[0].Message, "power-critical") {
		t.Fatalf("frozen events: %+v", frozen)
	}

	// Healthy again: the workload stays frozen for the hold, then resumes.
	bus.Publish(workloads.SubsystemEvent(health.Power, health.Critical, health.OK))
	healthy := time.Now()
	waitFor(t, "resumed", 60*time.Second, func() bool {
		s, err := env.rt.Status(ctx, "shed-me")
		return err == nil && s.State == workloads.TaskRunning
	})
	if d := time.Since(healthy); d < hold {
		t.Errorf("resumed after %s, before the hold of %s", d, hold)
	}
	waitFor(t, "state running", 30*time.Second, func() bool { return state(m, "shed-me").State == workloads.StateRunning })
	if s := state(m, "shed-me"); s.Protection != "" || s.ShedReason != "" {
		t.Errorf("after restore: %+v", s)
	}
	if len(rec.find(func(e events.Event) bool { return e.Source == "shed-me" && e.Data["action"] == "protect-none" })) != 1 {
		t.Error("no restore event")
	}
	if len(rec.find(func(e events.Event) bool {
		return e.Source == "keep-me" && strings.HasPrefix(e.Data["action"], "protect-")
	})) != 0 {
		t.Error("the critical workload was touched")
	}
}

// cgroupValue reads a cgroup file of a workload (v2 unified, or v1 per
// controller), e.g. ("cpu", "cpu.max", "cpu.cfs_quota_us").
func cgroupValue(t *testing.T, id, controller, v2file, v1file string) string {
	t.Helper()
	c, err := env.rt.Client().LoadContainer(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := c.Spec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	path := spec.Linux.CgroupsPath
	for _, p := range []string{"/sys/fs/cgroup" + path + "/" + v2file, "/sys/fs/cgroup/" + controller + path + "/" + v1file} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no cgroup file for %s (%s)", id, path)
	return ""
}

func TestLimitsThrottleAndPolicyStop(t *testing.T) {
	need(t)
	m, rec := startManager(t, workloads.Options{})
	ctx := context.Background()
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "limited", Image: env.image, CPU: 1, MemoryMB: 48, Priority: "sheddable"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "running", 60*time.Second, func() bool { return state(m, "limited").State == workloads.StateRunning })
	quota := func() string {
		v := cgroupValue(t, "limited", "cpu", "cpu.max", "cpu.cfs_quota_us")
		q, _, _ := strings.Cut(v, " ")
		return q
	}
	if q := quota(); q != "100000" {
		t.Fatalf("cpu quota %s, want 100000 (1 core)", q)
	}
	if mem := cgroupValue(t, "limited", "memory", "memory.max", "memory.limit_in_bytes"); mem != fmt.Sprint(48<<20) {
		t.Errorf("memory limit %s, want %d", mem, 48<<20)
	}
	// Throttle to 50 %: the quota halves (task Update).
	if err := m.SetProtection(ctx, "limited", workloads.Protection{Mode: workloads.ModeThrottled, Percent: 50, Reason: "hot"}); err != nil {
		t.Fatal(err)
	}
	if q := quota(); q != "50000" {
		t.Fatalf("throttled quota %s, want 50000", q)
	}
	if err := m.SetProtection(ctx, "limited", workloads.Protection{}); err != nil {
		t.Fatal(err)
	}
	if q := quota(); q != "100000" {
		t.Fatalf("restored quota %s, want 100000", q)
	}
	// A "stop" rule: the task goes, is not restarted, and comes back after.
	if err := m.SetProtection(ctx, "limited", workloads.Protection{Mode: workloads.ModeStopped, Reason: "fuse"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // worker passes: it must not restart it
	if s, _ := env.rt.Status(ctx, "limited"); s.State != workloads.TaskAbsent {
		t.Fatalf("policy-stopped task is %s", s.State)
	}
	if err := m.SetProtection(ctx, "limited", workloads.Protection{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "started again", 60*time.Second, func() bool {
		return len(rec.find(func(e events.Event) bool { return e.Source == "limited" && e.Data["action"] == "started" })) == 2
	})
	if s := state(m, "limited"); s.Restarts != 0 {
		t.Errorf("a policy stop counted as a restart: %+v", s)
	}
}

// TestBoardRestartReattaches: boardd dies (a helper process that ran
// the first Manager exits abruptly, leaving its output FIFOs) while
// containerd and the task keep running; the next boardd (a new Runtime
// and Manager on the same state dir) adopts the task, does not restart
// it, and the task's output reaches the new log.
func TestBoardRestartReattaches(t *testing.T) {
	need(t)
	dir := t.TempDir()
	ctx := context.Background()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PODOS_TEST_FIRST_BOARDD="+dir, "PODOS_TEST_ADDR="+env.daemon.Address(),
		"PODOS_TEST_RUNC="+env.daemon.RuncPath(), "PODOS_TEST_FIFO="+filepath.Join(env.dir, "fifo"), "PODOS_TEST_IMAGE="+env.image)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "first boardd: running") {
		t.Fatalf("first boardd: %v\n%s", err, out)
	}
	st1, err := env.rt.Status(ctx, "adopted")
	if err != nil || st1.State != workloads.TaskRunning {
		t.Fatalf("after the first boardd died: %+v %v", st1, err)
	}
	rt2, err := ctrd.NewRuntime(ctrd.RuntimeConfig{Address: env.daemon.Address(), RuncPath: env.daemon.RuncPath(), FIFODir: filepath.Join(env.dir, "fifo")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt2.Close() }) // after the Manager's cleanup (LIFO)
	m2, rec := startManager(t, workloads.Options{Runtime: rt2, StateDir: dir})
	waitFor(t, "adopted output in the new log", 60*time.Second, func() bool {
		return strings.Count(logText(m2, "adopted"), "heartbeat ") >= 3
	})
	st2, _ := rt2.Status(ctx, "adopted")
	if st2.Pid != st1.Pid || state(m2, "adopted").Restarts != 0 {
		t.Fatalf("task replaced: pid %d -> %d, %+v", st1.Pid, st2.Pid, state(m2, "adopted"))
	}
	if n := len(rec.find(func(e events.Event) bool { return e.Data["action"] == "started" })); n != 0 {
		t.Errorf("the adopted task was started again (%d)", n)
	}
}

// firstBoardd is the helper process of TestBoardRestartReattaches: it
// applies a workload, waits for it to run and exits without cleanup.
func firstBoardd(dir string) {
	fail := func(err error) { fmt.Println("first boardd:", err); os.Exit(1) }
	rt, err := ctrd.NewRuntime(ctrd.RuntimeConfig{Address: os.Getenv("PODOS_TEST_ADDR"), RuncPath: os.Getenv("PODOS_TEST_RUNC"), FIFODir: os.Getenv("PODOS_TEST_FIFO")})
	if err != nil {
		fail(err)
	}
	m, err := workloads.New(workloads.Options{Runtime: rt, StateDir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	go m.Run(ctx)
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "adopted", Image: os.Getenv("PODOS_TEST_IMAGE"), Args: []string{"-every=50ms"}}); err != nil {
		fail(err)
	}
	for i := 0; i < 6000; i++ {
		if i, _ := m.Get("adopted"); i.State == workloads.StateRunning {
			fmt.Println("first boardd: running")
			os.Exit(0)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fail(fmt.Errorf("not running"))
}

// TestUploadedImageRuns: an archive uploaded through the Manager (the
// API's POST /podos/v1/images) is imported, and a workload naming the
// image runs from it.
func TestUploadedImageRuns(t *testing.T) {
	need(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "heartbeat")
	build := exec.Command("go", "build", "-o", bin, "./boardd/workloads/demo/heartbeat")
	build.Dir = repoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build heartbeat: %v\n%s", err, out)
	}
	var archive strings.Builder
	if err := ociarchive.Write(&archive, ociarchive.Image{Name: "podos.dev/uploaded:1", Binary: bin, Path: "/heartbeat", Created: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	m, _ := startManager(t, workloads.Options{})
	ctx := context.Background()
	names, err := m.ImportImage(ctx, strings.NewReader(archive.String()))
	if err != nil || len(names) != 1 || names[0] != "podos.dev/uploaded:1" {
		t.Fatalf("import: %v %v", names, err)
	}
	if _, err := m.ImportImage(ctx, strings.NewReader("not a tar")); err == nil {
		t.Error("garbage imported")
	}
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "uploaded", Image: "podos.dev/uploaded:1", Args: []string{"-every=100ms"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "uploaded image running", 60*time.Second, func() bool {
		return strings.Contains(logText(m, "uploaded"), "heartbeat 2 ")
	})
	// A workload naming an image that exists nowhere fails with the reason.
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "missing", Image: "oci-archive:/nonexistent/x.tar", Restart: "never"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "missing image failed", 60*time.Second, func() bool {
		s := state(m, "missing")
		return s.State == workloads.StateFailed && strings.Contains(s.Error, "no such file")
	})
}
