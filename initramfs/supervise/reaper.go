package supervise

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper makes this process a child subreaper and reaps the orphans that
// re-parent to it (containerd's shims outlive the containerd that started
// them), without taking the exit status of the processes it was told are
// owned (the supervised services, waited for by os/exec).
//
// Hand-written: reaping with wait4(-1) would steal the services' statuses,
// so it waits only for zombie children it does not own, found in /proc;
// starts go through the Reaper's lock so a service that exits at once is
// never mistaken for an orphan.
type Reaper struct {
	Logger *slog.Logger
	// Proc is the procfs root (default /proc).
	Proc string

	mu    sync.Mutex
	owned map[int]bool
	self  int
}

// NewReaper makes the calling process a child subreaper (PR_SET_CHILD_SUBREAPER).
func NewReaper(log *slog.Logger) (*Reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	return &Reaper{Logger: log, owned: map[int]bool{}, self: os.Getpid()}, nil
}

// start starts cmd as an owned child.
func (r *Reaper) start(cmd *exec.Cmd) error {
	if r == nil {
		return cmd.Start()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	r.owned[cmd.Process.Pid] = true
	return nil
}

// done forgets an owned child once os/exec has waited for it.
func (r *Reaper) done(pid int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.owned, pid)
	r.mu.Unlock()
}

// Run reaps orphans on every SIGCHLD (and every 10 s, in case signals
// coalesce) until ctx is done.
func (r *Reaper) Run(ctx context.Context) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		r.Reap()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
	}
}

// Reap waits for every zombie child that is not owned and returns their pids.
func (r *Reaper) Reap() []int {
	proc := r.Proc
	if proc == "" {
		proc = "/proc"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil
	}
	var reaped []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || r.owned[pid] {
			continue
		}
		if !zombieChildOf(proc, pid, r.self) {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			reaped = append(reaped, pid)
			if r.Logger != nil {
				r.Logger.Debug("reaped orphan", "pid", pid, "status", ws.ExitStatus())
			}
		}
	}
	return reaped
}

// zombieChildOf reports whether /proc/<pid>/stat says a zombie whose
// parent is ppid.
func zombieChildOf(proc string, pid, ppid int) bool {
	b, err := os.ReadFile(proc + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || f[0] != "Z" {
		return false
	}
	p, err := strconv.Atoi(f[1])
	return err == nil && p == ppid
}
