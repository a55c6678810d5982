// Package fakeruntime is an in-memory workloads.Runtime for unit tests of
// pure logic (the Manager's bookkeeping, the API's status codes). The
// real runtime is tested against a real containerd in package ctrd.
package fakeruntime

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"podos.dev/podos/boardd/workloads"
)

// Runtime is the fake. Its zero value is not usable: call New.
type Runtime struct {
	mu     sync.Mutex
	cs     map[string]*ctr
	images map[string]bool
	// Calls records every mutating call as "op id" (e.g. "pause demo").
	calls []string
	// ExecFunc answers Exec; default echoes the command on stdout, exit 0.
	// ExecErr, when set, is returned by Exec (a command that cannot start).
	ExecErr  error
	ExecFunc func(id string, cmd []string, stdout, stderr io.Writer) int
}

type ctr struct {
	spec   workloads.TaskSpec
	state  workloads.TaskState
	code   int
	exited time.Time
	out    workloads.Output
	cpu    float64
	waits  []chan workloads.Exit
}

var _ workloads.Runtime = (*Runtime)(nil)

// New returns an empty fake that knows image "demo".
func New() *Runtime {
	return &Runtime{cs: map[string]*ctr{}, images: map[string]bool{"demo": true}}
}

func (r *Runtime) call(op, id string) { r.calls = append(r.calls, op+" "+id) }

// Calls returns the recorded calls.
func (r *Runtime) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// EnsureImage knows "demo", any image imported, and any oci-archive.
func (r *Runtime) EnsureImage(_ context.Context, ref string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.HasPrefix(ref, workloads.ArchivePrefix) || r.images[ref] {
		return ref, nil
	}
	return "", fmt.Errorf("image %s: %w", ref, workloads.ErrNotFound)
}

// ImportArchive reads the body; its first line names the image.
func (r *Runtime) ImportArchive(_ context.Context, rd io.Reader) ([]string, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	name, _, _ := strings.Cut(string(b), "\n")
	if !strings.HasPrefix(name, "image:") {
		return nil, fmt.Errorf("not an archive")
	}
	name = strings.TrimPrefix(name, "image:")
	r.mu.Lock()
	r.images[name] = true
	r.mu.Unlock()
	return []string{name}, nil
}

// Start implements workloads.Runtime; the task writes one line.
func (r *Runtime) Start(_ context.Context, id string, spec workloads.TaskSpec, out workloads.Output) error {
	r.mu.Lock()
	r.call("start", id)
	r.cs[id] = &ctr{spec: spec, state: workloads.TaskRunning, out: out, cpu: spec.CPU}
	r.mu.Unlock()
	fmt.Fprintf(out.Stdout, "started %s %s\n", id, strings.Join(spec.Args, " "))
	return nil
}

// Attach implements workloads.Runtime.
func (r *Runtime) Attach(_ context.Context, id string, out workloads.Output) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cs[id]
	if !ok {
		return workloads.ErrNotFound
	}
	c.out = out
	return nil
}

// Status implements workloads.Runtime.
func (r *Runtime) Status(_ context.Context, id string) (workloads.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cs[id]
	if !ok {
		return workloads.Status{}, fmt.Errorf("%s: %w", id, workloads.ErrNotFound)
	}
	return workloads.Status{State: c.state, Container: true, Hash: c.spec.Hash, ExitCode: c.code, ExitedAt: c.exited}, nil
}

// Wait implements workloads.Runtime.
func (r *Runtime) Wait(_ context.Context, id string) (<-chan workloads.Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cs[id]
	if !ok {
		return nil, workloads.ErrNotFound
	}
	ch := make(chan workloads.Exit, 1)
	if c.state == workloads.TaskStopped {
		ch <- workloads.Exit{Code: c.code, At: c.exited}
		return ch, nil
	}
	c.waits = append(c.waits, ch)
	return ch, nil
}

// Exit makes a running task exit with code (as if the process ended).
func (r *Runtime) Exit(id string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cs[id]
	if !ok || c.state == workloads.TaskStopped || c.state == workloads.TaskAbsent {
		return
	}
	c.state, c.code, c.exited = workloads.TaskStopped, code, time.Now()
	for _, w := range c.waits {
		w <- workloads.Exit{Code: code, At: c.exited}
	}
	c.waits = nil
}

func (r *Runtime) set(op, id string, from []workloads.TaskState, to workloads.TaskState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.call(op, id)
	c, ok := r.cs[id]
	if !ok {
		return workloads.ErrNotFound
	}
	for _, f := range from {
		if c.state == f {
			c.state = to
			return nil
		}
	}
	return fmt.Errorf("%s %s: task is %s", op, id, c.state)
}

// Pause implements workloads.Runtime.
func (r *Runtime) Pause(_ context.Context, id string) error {
	return r.set("pause", id, []workloads.TaskState{workloads.TaskRunning}, workloads.TaskPaused)
}

// Resume implements workloads.Runtime.
func (r *Runtime) Resume(_ context.Context, id string) error {
	return r.set("resume", id, []workloads.TaskState{workloads.TaskPaused}, workloads.TaskRunning)
}

// SetCPU implements workloads.Runtime.
func (r *Runtime) SetCPU(_ context.Context, id string, cores float64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.call(fmt.Sprintf("cpu=%g", cores), id)
	c, ok := r.cs[id]
	if !ok {
		return workloads.ErrNotFound
	}
	c.cpu = cores
	return nil
}

// CPU returns the task's CPU quota.
func (r *Runtime) CPU(id string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cs[id]; ok {
		return c.cpu
	}
	return -1
}

// State returns the task's state (absent if none).
func (r *Runtime) State(id string) workloads.TaskState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cs[id]; ok {
		return c.state
	}
	return workloads.TaskAbsent
}

// Stop implements workloads.Runtime: the task goes, the container stays.
func (r *Runtime) Stop(_ context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.call("stop", id)
	c, ok := r.cs[id]
	if !ok {
		return workloads.ErrNotFound
	}
	if c.state != workloads.TaskStopped {
		for _, w := range c.waits {
			w <- workloads.Exit{Code: 137, At: time.Now()}
		}
		c.waits = nil
	}
	c.state = workloads.TaskAbsent
	return nil
}

// Remove implements workloads.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	_, ok := r.cs[id]
	r.mu.Unlock()
	if !ok {
		return workloads.ErrNotFound
	}
	_ = r.Stop(ctx, id, 0)
	r.mu.Lock()
	r.call("remove", id)
	delete(r.cs, id)
	r.mu.Unlock()
	return nil
}

// Exec implements workloads.Runtime.
func (r *Runtime) Exec(_ context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	r.mu.Lock()
	c, ok := r.cs[id]
	f, execErr := r.ExecFunc, r.ExecErr
	r.mu.Unlock()
	if !ok || c.state != workloads.TaskRunning {
		return 0, workloads.ErrNotFound
	}
	if execErr != nil {
		return 0, execErr
	}
	if f != nil {
		return f(id, cmd, stdout, stderr), nil
	}
	fmt.Fprintln(stdout, strings.Join(cmd, " "))
	return 0, nil
}

// List implements workloads.Runtime.
func (r *Runtime) List(context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id := range r.cs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, nil
}

// Put adds a container as if left by an earlier boardd.
func (r *Runtime) Put(id string, spec workloads.TaskSpec, state workloads.TaskState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cs[id] = &ctr{spec: spec, state: state, out: workloads.Output{Stdout: io.Discard, Stderr: io.Discard}}
}
