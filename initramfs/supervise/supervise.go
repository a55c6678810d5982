// Package supervise keeps the board's services running: it starts a
// command, restarts it with exponential backoff whenever it exits, and
// copies its output to the console and to a bounded log file.
//
// Hand-written (a few dozen lines around os/exec) because u-root has no
// supervisor and a full one (s6, runit) does not belong in a sealed
// initramfs.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Service is one supervised command.
type Service struct {
	Name string
	Path string
	Args []string
	Env  []string // nil: the supervisor's environment
	// Output receives the service's stdout and stderr (e.g. the console
	// and a LogFile through io.MultiWriter). Nil discards.
	Output io.Writer
	// Stdin, for an interactive service such as the serial shell.
	Stdin *os.File
	// SysProcAttr, e.g. Setsid/Setctty for a shell on a tty.
	SysProcAttr *syscall.SysProcAttr
	Backoff     Backoff
	// StopGrace is how long a stopping service has between SIGTERM and
	// SIGKILL (default 5s).
	StopGrace time.Duration
	Logger    *slog.Logger
	// OnStart is called with each new process's pid (optional).
	OnStart func(pid int)
	// Reaper, when the supervisor is a child subreaper, is told which
	// children are the service's so it never reaps them (optional).
	Reaper *Reaper
}

// Backoff is the restart delay policy: Min after the first exit, doubled
// after each exit that follows a run shorter than Reset, capped at Max.
type Backoff struct {
	Min, Max, Reset time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 500 * time.Millisecond
	}
	if b.Max < b.Min {
		b.Max = 30 * time.Second
		if b.Max < b.Min {
			b.Max = b.Min
		}
	}
	if b.Reset <= 0 {
		b.Reset = time.Minute
	}
	return b
}

// Next returns the delay before the next start, given the previous delay
// (0 before the first restart) and how long the process ran.
func (b Backoff) Next(prev, ran time.Duration) time.Duration {
	b = b.withDefaults()
	if prev <= 0 || ran >= b.Reset {
		return b.Min
	}
	next := prev * 2
	if next > b.Max {
		next = b.Max
	}
	return next
}

// Run starts the service and keeps it running until ctx is done; then it
// stops the process (SIGTERM, SIGKILL after StopGrace) and returns nil.
// It returns an error only when the service cannot be described (no path).
func (s *Service) Run(ctx context.Context) error {
	if s.Path == "" {
		return errors.New("supervise: service has no path")
	}
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("service", s.Name)
	grace := s.StopGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	var delay time.Duration
	for restarts := 0; ; restarts++ {
		start := time.Now()
		err := s.once(ctx, grace, log, restarts)
		if ctx.Err() != nil {
			return nil
		}
		ran := time.Since(start)
		delay = s.Backoff.Next(delay, ran)
		log.Warn("service exited; restarting", "err", err, "ran", ran.Round(time.Millisecond), "restart_in", delay)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// once runs the process to its end (or until ctx is done) and returns why
// it ended.
func (s *Service) once(ctx context.Context, grace time.Duration, log *slog.Logger, restarts int) error {
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = s.Env
	out := s.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if s.Stdin != nil {
		cmd.Stdin = s.Stdin
	}
	cmd.SysProcAttr = s.SysProcAttr
	if err := s.Reaper.start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", s.Path, err)
	}
	pid := cmd.Process.Pid
	log.Info("service started", "pid", cmd.Process.Pid, "restarts", restarts)
	if s.OnStart != nil {
		s.OnStart(cmd.Process.Pid)
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		s.Reaper.done(pid)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			return errors.New("exited with status 0")
		}
		return err
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		log.Info("service stopped", "err", err)
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		log.Warn("service killed after grace period", "grace", grace, "err", <-done)
	}
	return ctx.Err()
}
