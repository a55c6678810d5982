package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/fabric"
)

// Report is one update as the agent prints it: compact, because it goes
// over a serial console.
type Report struct {
	Time     time.Time            `json:"time"`
	Devices  []string             `json:"devices"`         // "bdf type class"
	Links    map[string]string    `json:"links,omitempty"` // bdf: "2.5x1/16x32"
	AER      map[string][3]uint64 `json:"aer,omitempty"`   // bdf: correctable, nonfatal, fatal totals
	RootAER  map[string][3]uint64 `json:"root_aer,omitempty"`
	Slots    map[string]string    `json:"slots,omitempty"` // name: "port power"
	Findings []fabric.Finding     `json:"findings"`
	Changes  []fabric.Change      `json:"changes,omitempty"`
}

func report(u fabric.Update) Report {
	r := Report{Time: u.Time, Findings: u.Findings, Changes: u.Changes, Links: map[string]string{}, AER: map[string][3]uint64{}, RootAER: map[string][3]uint64{}, Slots: map[string]string{}}
	if r.Findings == nil {
		r.Findings = []fabric.Finding{}
	}
	for _, d := range u.Topology.Devices {
		r.Devices = append(r.Devices, fmt.Sprintf("%s %s %06x", d.BDF, d.Type, d.Class))
		if d.Link != nil {
			r.Links[d.BDF] = fmt.Sprintf("%gx%d/%gx%d", d.Link.Speed, d.Link.Width, d.Link.MaxSpeed, d.Link.MaxWidth)
		}
		if d.AER != nil {
			r.AER[d.BDF] = [3]uint64{d.AER.Correctable.Total, d.AER.NonFatal.Total, d.AER.Fatal.Total}
			if rp := d.AER.RootPort; rp != nil {
				r.RootAER[d.BDF] = [3]uint64{rp.Correctable, rp.NonFatal, rp.Fatal}
			}
		}
	}
	for _, s := range u.Topology.Slots {
		p := "off"
		if s.Power != nil && *s.Power {
			p = "on"
		}
		r.Slots[s.Name] = s.Port + " " + p
	}
	return r
}

// noUevents is a uevent source that never reports: the watcher polls only.
type noUevents struct{}

func (noUevents) Read(ctx context.Context) (fabric.Uevent, error) {
	<-ctx.Done()
	return fabric.Uevent{}, ctx.Err()
}
func (noUevents) Close() error { return nil }

func watch(con io.ReadWriter, uevents bool) error {
	var cfg boardconfig.Fabric
	b, err := os.ReadFile("/fabric.json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("fabric.json: %w", err)
	}
	var mu sync.Mutex // one writer on the console
	println := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		io.WriteString(con, s+"\n")
	}
	log := slog.New(slog.NewTextHandler(&lineWriter{println}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The Source's default 5 s backstop poll: hot-plug must be seen by
	// uevents, well before the poll would.
	o := fabric.SourceOptions{Poll: 5 * time.Second, Logger: log}
	if !uevents {
		o.Uevents = noUevents{}
	}
	src := fabric.NewSource("/sys", &cfg, o)
	updates, _ := src.Subscribe(64)
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx) }()
	go func() {
		for u := range updates {
			j, _ := json.Marshal(report(u))
			println("FABRIC " + string(j))
		}
	}()
	acts := &fabric.Actions{Root: "/sys"}
	sc := bufio.NewScanner(con)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		var err error
		switch {
		case f[0] == "poweroff":
			return nil
		case f[0] == "retrain" && len(f) == 2:
			err = acts.Retrain(ctx, f[1])
		case f[0] == "reset" && len(f) == 2:
			err = acts.ResetPort(ctx, f[1])
		case f[0] == "remove" && len(f) == 2:
			err = acts.Remove(ctx, f[1])
		case f[0] == "rescan" && len(f) <= 2:
			bdf := ""
			if len(f) == 2 {
				bdf = f[1]
			}
			err = acts.Rescan(ctx, bdf)
		case f[0] == "power" && len(f) == 3:
			err = acts.SlotPower(ctx, f[1], f[2] == "on")
		default:
			err = fmt.Errorf("unknown command")
		}
		if err != nil {
			println("ERR " + line + ": " + err.Error())
		} else {
			println("OK " + line)
		}
	}
	select {
	case err := <-errc:
		return err
	default:
		return sc.Err()
	}
}

type lineWriter struct{ println func(string) }

func (w *lineWriter) Write(b []byte) (int, error) {
	w.println("LOG " + strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
