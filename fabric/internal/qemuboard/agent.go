package qemuboard

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Report mirrors the guest agent's "FABRIC {json}" lines.
type Report struct {
	Time     time.Time            `json:"time"`
	Devices  []string             `json:"devices"`
	Links    map[string]string    `json:"links"`
	AER      map[string][3]uint64 `json:"aer"`
	RootAER  map[string][3]uint64 `json:"root_aer"`
	Slots    map[string]string    `json:"slots"`
	Findings []struct {
		Subject string `json:"subject"`
		Code    string `json:"code"`
		State   int    `json:"state"`
		Reason  string `json:"reason"`
	} `json:"findings"`
	Changes []struct {
		Kind string `json:"kind"`
		BDF  string `json:"bdf"`
	} `json:"changes"`
	// Arrived is when the host read the line.
	Arrived time.Time `json:"-"`
}

// Has reports whether the topology lists the function bdf.
func (r *Report) Has(bdf string) bool {
	for _, d := range r.Devices {
		if strings.HasPrefix(d, bdf+" ") {
			return true
		}
	}
	return false
}

// Finding returns the reason of the finding (subject, code), if any.
func (r *Report) Finding(subject, code string) (string, bool) {
	for _, f := range r.Findings {
		if f.Subject == subject && f.Code == code {
			return f.Reason, true
		}
	}
	return "", false
}

// Agent reads a watch-mode guest agent's console.
type Agent struct {
	b    *Board
	Last *Report
}

// NewAgent wraps a board booted in watch mode.
func NewAgent(b *Board) *Agent { return &Agent{b: b} }

// Wait reads reports until ok accepts one (or the latest already does).
func (a *Agent) Wait(ctx context.Context, what string, ok func(*Report) bool) (*Report, error) {
	if a.Last != nil && ok(a.Last) {
		return a.Last, nil
	}
	for {
		select {
		case line, open := <-a.b.Lines():
			if !open {
				return nil, fmt.Errorf("console closed waiting for %s", what)
			}
			j, found := strings.CutPrefix(line, "FABRIC ")
			if !found {
				continue
			}
			var r Report
			if err := json.Unmarshal([]byte(j), &r); err != nil {
				return nil, fmt.Errorf("bad report %q: %w", line, err)
			}
			r.Arrived = time.Now()
			a.Last = &r
			if ok(&r) {
				return &r, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// Command sends a command line and waits for its OK (or ERR) answer,
// keeping the reports that arrive meanwhile.
func (a *Agent) Command(ctx context.Context, cmd string) error {
	if err := a.b.Send(cmd); err != nil {
		return err
	}
	for {
		select {
		case line, open := <-a.b.Lines():
			if !open {
				return fmt.Errorf("console closed waiting for %q", cmd)
			}
			switch {
			case line == "OK "+cmd:
				return nil
			case strings.HasPrefix(line, "ERR "+cmd+":"):
				return fmt.Errorf("%s", strings.TrimPrefix(line, "ERR "))
			case strings.HasPrefix(line, "FABRIC "):
				var r Report
				if err := json.Unmarshal([]byte(line[len("FABRIC "):]), &r); err == nil {
					r.Arrived = time.Now()
					a.Last = &r
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("command %q: %w", cmd, ctx.Err())
		}
	}
}
