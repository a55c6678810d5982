package workloads

import (
	"context"
	"errors"
	"fmt"
	"time"

	"podos.dev/podos/boardd/health"
)

// runner is one workload's reconcile loop state (owned by its goroutine).
type runner struct {
	m        *Manager
	w        *workload
	failures int       // consecutive failed runs, for the backoff
	next     time.Time // earliest next start (backoff)
	pending  bool      // an exit was accounted: the next start is a restart
	finished bool      // the restart policy said not to start again
	gen      uint64    // spec generation finished was decided for
	live     bool      // a task of ours was running: its disappearance is an exit
	out      Output
}

// runWorkload reconciles one workload until it is removed or ctx ends.
func (m *Manager) runWorkload(ctx context.Context, w *workload) {
	defer close(w.done)
	r := &runner{m: m, w: w, out: Output{Stdout: w.logs.Writer("stdout"), Stderr: w.logs.Writer("stderr")}}
	for ctx.Err() == nil {
		wait := r.step(ctx)
		if wait == nil {
			return
		}
		wait(ctx)
	}
}

type waitFn func(ctx context.Context)

func (r *runner) sleep(d time.Duration) waitFn {
	return func(ctx context.Context) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-r.w.notify:
		case <-t.C:
		}
	}
}

func (r *runner) setState(state, errMsg string, mut func(i *Info)) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.w.info.State = state
	r.w.info.Error = errMsg
	if mut != nil {
		mut(&r.w.info)
	}
}

// step does one reconcile pass and returns how to wait before the next
// (nil: the workload is gone).
func (r *runner) step(ctx context.Context) waitFn {
	m, w := r.m, r.w
	rt := m.opt.Runtime
	m.mu.Lock()
	spec, removed, prot, gen := w.spec, w.removed, w.prot, w.gen
	m.mu.Unlock()

	if removed {
		w.opMu.Lock()
		err := rt.Remove(ctx, w.name)
		w.opMu.Unlock()
		if err != nil && !errors.Is(err, ErrNotFound) {
			m.log.Warn("remove workload failed; retrying", "workload", w.name, "err", err)
			r.setState(StateFailed, "remove: "+err.Error(), nil)
			return r.sleep(m.opt.Poll)
		}
		m.mu.Lock()
		if m.ws[w.name] == w {
			delete(m.ws, w.name)
		}
		m.mu.Unlock()
		m.wevent(w, health.OK, fmt.Sprintf("workload %s removed", w.name), "removed", nil)
		return nil
	}
	if r.finished && gen != r.gen {
		// A new apply: start afresh.
		r.finished, r.failures, r.pending, r.next = false, 0, false, time.Time{}
	}

	w.opMu.Lock()
	st, err := rt.Status(ctx, w.name)
	w.opMu.Unlock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		r.setState(w.infoState(m), "runtime: "+err.Error(), nil)
		return r.sleep(min(m.opt.Poll, 500*time.Millisecond))
	}
	if errors.Is(err, ErrNotFound) {
		st = Status{State: TaskAbsent}
	}
	hash := Hash(spec)

	switch st.State {
	case TaskStopped:
		return r.exited(ctx, spec, st)

	case TaskRunning, TaskPaused, TaskCreated:
		if st.Hash != hash || st.State == TaskCreated || prot.Mode == ModeStopped {
			why := "spec changed"
			if st.State == TaskCreated {
				why = "created but never started"
			} else if prot.Mode == ModeStopped {
				why = "stopped by policy: " + prot.Reason
			}
			w.opMu.Lock()
			err := rt.Stop(ctx, w.name, m.opt.StopGrace)
			w.attached = false
			w.opMu.Unlock()
			r.live = false
			if err != nil && !errors.Is(err, ErrNotFound) {
				r.setState(w.infoState(m), "stop: "+err.Error(), nil)
				return r.sleep(m.opt.Poll)
			}
			if prot.Mode == ModeStopped {
				m.wevent(w, health.Warning, fmt.Sprintf("workload %s stopped: %s", w.name, prot.Reason), "stopped", map[string]string{"reason": prot.Reason})
			} else {
				m.log.Info("workload task replaced", "workload", w.name, "why", why)
			}
			return r.sleep(0)
		}
		w.opMu.Lock()
		if !w.attached {
			if err := rt.Attach(ctx, w.name, r.out); err != nil {
				// The output cannot be reconnected: restart the task so
				// its logs are not lost from here on.
				m.log.Warn("reattach failed; restarting task", "workload", w.name, "err", err)
				_ = rt.Stop(ctx, w.name, m.opt.StopGrace)
				w.opMu.Unlock()
				r.live = false
				return r.sleep(0)
			}
			w.attached = true
			w.cpuKnown = false
		}
		err := m.enforceLocked(ctx, w, st, spec, prot)
		w.opMu.Unlock()
		if err != nil {
			r.setState(w.infoState(m), err.Error(), nil)
			return r.sleep(m.opt.Poll)
		}
		r.live = true
		state := StateRunning
		if prot.Mode == ModeFrozen {
			state = StatePaused
		}
		r.setState(state, "", nil)
		exits, err := rt.Wait(ctx, w.name)
		if err != nil {
			return r.sleep(min(m.opt.Poll, 500*time.Millisecond))
		}
		return func(ctx context.Context) {
			t := time.NewTicker(m.opt.Poll)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-w.notify:
			case <-t.C:
			case <-exits:
			}
		}

	default: // absent
		if r.live && prot.Mode != ModeStopped {
			// The task vanished without us stopping it (killed while
			// the runtime was down): account it as a failed exit.
			r.live = false
			return r.exited(ctx, spec, Status{State: TaskStopped, ExitCode: -1})
		}
		w.opMu.Lock()
		w.attached = false
		w.opMu.Unlock()
		if r.finished {
			return r.sleep(time.Hour)
		}
		r.live = false
		if prot.Mode == ModeStopped || prot.Mode == ModeFrozen {
			// Not started while the board sheds it.
			r.setState(StateStopped, "", nil)
			return r.sleep(time.Hour)
		}
		if now := m.opt.Now(); now.Before(r.next) {
			next := r.next
			r.setState(StateRestarting, w.lastError(m), func(i *Info) { i.NextStart = &next })
			return r.sleep(next.Sub(now))
		}
		return r.start(ctx, spec, prot)
	}
}

// start creates and starts the task.
func (r *runner) start(ctx context.Context, spec Spec, prot Protection) waitFn {
	m, w := r.m, r.w
	rt := m.opt.Runtime
	image, err := m.ensureImage(ctx, spec.Image)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			r.setState(w.infoState(m), "runtime: "+err.Error(), nil)
			return r.sleep(500 * time.Millisecond)
		}
		return r.failed(fmt.Sprintf("image %s: %v", spec.Image, err))
	}
	ts := TaskSpec{Image: image, Args: spec.Args, Env: spec.Env, CPU: cpuFor(spec, prot), MemoryMB: spec.MemoryMB, Hash: Hash(spec)}
	w.opMu.Lock()
	err = rt.Start(ctx, w.name, ts, r.out)
	if err == nil {
		w.attached = true
		w.cpuApplied, w.cpuKnown = ts.CPU, true
	}
	w.opMu.Unlock()
	if err != nil {
		if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			r.setState(w.infoState(m), "runtime: "+err.Error(), nil)
			return r.sleep(500 * time.Millisecond)
		}
		return r.failed("start: " + err.Error())
	}
	now := m.opt.Now()
	m.mu.Lock()
	w.startedAt = now
	if r.pending {
		w.info.Restarts++
	}
	restarts := w.info.Restarts
	m.mu.Unlock()
	r.pending = false
	r.live = true
	r.setState(StateRunning, "", func(i *Info) { i.StartedAt = &now; i.NextStart = nil; i.ExitCode = nil })
	if restarts > 0 {
		m.wevent(w, health.OK, fmt.Sprintf("workload %s restarted (restart %d)", w.name, restarts), "restarted", nil)
	} else {
		m.wevent(w, health.OK, fmt.Sprintf("workload %s started", w.name), "started", nil)
	}
	return r.sleep(0)
}

// failed records a start failure and schedules a retry with backoff.
func (r *runner) failed(msg string) waitFn {
	m := r.m
	d := r.backoff()
	r.next = m.opt.Now().Add(d)
	r.pending = true
	m.wevent(r.w, health.Warning, fmt.Sprintf("workload %s failed: %s; retrying in %s", r.w.name, msg, d.Round(time.Millisecond)), "failed", nil)
	r.setState(StateFailed, msg, nil)
	return r.sleep(d)
}

// exited accounts a task's exit once (deleting the task) and applies the
// restart policy.
func (r *runner) exited(ctx context.Context, spec Spec, st Status) waitFn {
	m, w := r.m, r.w
	r.live = false
	w.opMu.Lock()
	err := m.opt.Runtime.Stop(ctx, w.name, 0)
	w.attached = false
	w.opMu.Unlock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		r.setState(w.infoState(m), "delete task: "+err.Error(), nil)
		return r.sleep(min(m.opt.Poll, 500*time.Millisecond))
	}
	m.mu.Lock()
	ran := st.ExitedAt.Sub(w.startedAt)
	if w.startedAt.IsZero() || st.ExitedAt.IsZero() {
		ran = 0
	}
	gen := w.gen
	m.mu.Unlock()
	code := st.ExitCode
	if ran >= m.opt.BackoffReset {
		r.failures = 0
	}
	sev := health.OK
	if code != 0 {
		sev = health.Warning
	}
	restart := spec.Restart == RestartAlways || (spec.Restart == RestartOnFailure && code != 0)
	if !restart {
		r.finished, r.gen = true, gen
		state := StateStopped
		if code != 0 {
			state = StateFailed
		}
		r.setState(state, "", func(i *Info) { c := code; i.ExitCode = &c; i.NextStart = nil })
		m.wevent(w, sev, fmt.Sprintf("workload %s exited with code %d; restart policy %s: not restarted", w.name, code, spec.Restart), "exited", map[string]string{"exit_code": fmt.Sprint(code)})
		return r.sleep(0)
	}
	d := r.backoff()
	r.next = m.opt.Now().Add(d)
	r.pending = true
	next := r.next
	r.setState(StateRestarting, "", func(i *Info) { c := code; i.ExitCode = &c; i.NextStart = &next })
	m.wevent(w, sev, fmt.Sprintf("workload %s exited with code %d; restarting in %s", w.name, code, d.Round(time.Millisecond)), "exited", map[string]string{"exit_code": fmt.Sprint(code)})
	return r.sleep(0)
}

// backoff returns the next restart delay and counts a failure:
// base, 2*base, 4*base... up to max.
func (r *runner) backoff() time.Duration {
	d := r.m.opt.BackoffBase
	for i := 0; i < r.failures && d < r.m.opt.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.m.opt.BackoffMax)
	r.failures++
	return d
}

// infoState is the state to keep reporting while the runtime is away.
func (w *workload) infoState(m *Manager) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return w.info.State
}

func (w *workload) lastError(m *Manager) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return w.info.Error
}

// ensureImage resolves an image reference, re-importing an uploaded
// archive when the runtime no longer has the image.
func (m *Manager) ensureImage(ctx context.Context, ref string) (string, error) {
	m.mu.Lock()
	path, uploaded := m.state.Images[ref]
	m.mu.Unlock()
	if uploaded {
		if _, err := m.opt.Runtime.EnsureImage(ctx, ArchivePrefix+path); err != nil {
			return "", err
		}
		return ref, nil
	}
	return m.opt.Runtime.EnsureImage(ctx, ref)
}
