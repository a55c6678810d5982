// Package redfishtest runs boardd's Redfish service for tests: a board
// snapshot built from a board config's emulated sensors (the emulated
// RuggedPOD blade by default), a real durable event log, real TLS, and
// helpers for requests and Server-Sent Events. The integration tests of
// the daemon reuse SSE against a boardd running on ipmi_sim.
package redfishtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmi"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/eventlog"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/redfish"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/boardd/tlsutil"
)

// BoardConfig loads board-configs/<name>.yaml from the repository.
func BoardConfig(t testing.TB, name string) *boardconfig.Config {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("redfishtest: repository root (go.mod) not found")
		}
		dir = parent
	}
	cfg, err := boardconfig.Load(filepath.Join(dir, "board-configs", name+".yaml"))
	if err != nil {
		t.Fatalf("redfishtest: %v", err)
	}
	return cfg
}

var simUnits = map[uint8]bmc.Unit{1: bmc.UnitCelsius, 4: bmc.UnitVolts, 5: bmc.UnitAmperes, 6: bmc.UnitWatts, 18: bmc.UnitRPM}

func classOf(role boardconfig.Role, u bmc.Unit) bmc.Class {
	switch role {
	case boardconfig.RolePSUStatus:
		return bmc.ClassPSU
	case boardconfig.RoleFuse:
		return bmc.ClassFuse
	case boardconfig.RoleLeak:
		return bmc.ClassLeak
	case boardconfig.RolePump:
		return bmc.ClassPump
	case boardconfig.RoleFan:
		return bmc.ClassFan
	}
	switch u {
	case bmc.UnitVolts:
		return bmc.ClassVoltage
	case bmc.UnitAmperes:
		return bmc.ClassCurrent
	case bmc.UnitWatts:
		return bmc.ClassPower
	case bmc.UnitCelsius:
		return bmc.ClassTemperature
	}
	return bmc.ClassOther
}

// Snapshot builds the board's snapshot from its config's emulated
// sensors, as the collector would see them on ipmi_sim: definitions from
// the sim blocks, readings from their initial raw values (or raw, by
// sensor name), judged by the health policy.
func Snapshot(cfg *boardconfig.Config, seq uint64, now time.Time, raw map[string]uint16) *snapshot.Snapshot {
	s := &snapshot.Snapshot{Seq: seq, Time: now, Subsystems: map[health.Subsystem]snapshot.Rollup{}}
	s.Board.ID, s.Board.Model, s.Board.Slot = cfg.Board.ID, cfg.Board.Model, cfg.Board.Slot
	s.BMC = snapshot.BMC{Up: true, Transport: "kcs", LastOK: now}
	var views []health.SensorView
	for i := range cfg.Sensors {
		c := &cfg.Sensors[i]
		if c.Sim == nil {
			continue
		}
		sim := c.Sim
		def := bmc.SensorDef{
			ID: ipmi.SensorID(0x20, 0, sim.Number), Name: c.Name, Owner: 0x20, Number: sim.Number,
			SensorType: sim.SensorType, ReadingType: sim.EventType, EntityID: sim.EntityID, EntityInstance: sim.EntityInst,
			Kind: bmc.KindDiscrete,
		}
		value := sim.Initial
		if v, ok := raw[c.Name]; ok {
			value = v
		}
		rd := bmc.Reading{ID: def.ID, Available: true, Time: now}
		if sim.IsThreshold() {
			def.Kind = bmc.KindThreshold
			def.Unit = simUnits[sim.Unit]
			th := func(k string) *float64 {
				if r, ok := sim.RawThresholds[k]; ok {
					v := sim.SimValue(r)
					return &v
				}
				return nil
			}
			def.Thresholds = bmc.Thresholds{
				LowerNonCritical: th("lnc"), LowerCritical: th("lc"), LowerFatal: th("lnr"),
				UpperNonCritical: th("unc"), UpperCritical: th("uc"), UpperFatal: th("unr"),
			}
			rd.Value = sim.SimValue(uint8(value))
		} else {
			rd.State = value
		}
		def.Class = classOf(c.Role, def.Unit)
		in := health.Input{Def: def, Reading: rd, Cfg: c}
		th := health.Effective(def, c)
		st, _ := health.Evaluate(health.SensorState{}, in, th, 1, now)
		v := health.View(in, st)
		views = append(views, v)
		s.Sensors = append(s.Sensors, snapshot.Sensor{
			Def: def, Reading: rd, Thresholds: th, Subsystem: v.Subsystem,
			State: st.State, Reason: st.Reason, Since: now,
		})
	}
	subs := health.Subsystems(views)
	var members []health.Member
	for k, m := range subs {
		s.Subsystems[k] = snapshot.Rollup{State: m.State, Reason: m.Reason, Since: now}
		members = append(members, m)
	}
	st, why := health.Board(nil, members...)
	s.Health = snapshot.Rollup{State: st, Reason: why, Since: now}
	sortSensors(s.Sensors)
	return s
}

func sortSensors(ss []snapshot.Sensor) {
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && ss[j].Def.ID < ss[j-1].Def.ID; j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}

// Options add parts to the service Start runs.
type Options struct {
	Config *boardconfig.Config // default: the emulated RuggedPOD blade
	SEL    bmc.SELReader
	Extra  []redfish.Tree
	Mounts map[string]http.Handler
}

// Server is a running Redfish service over TLS on 127.0.0.1.
type Server struct {
	URL           string // https://127.0.0.1:port
	Addr          string // 127.0.0.1:port
	Client        *http.Client
	Admin         string
	AdminPassword string
	Config        *boardconfig.Config
	Store         *snapshot.Store
	Bus           *events.Bus
	Log           *eventlog.Log
	Emitter       *events.Emitter
	Auth          *auth.Service
	Service       *redfish.Service
	TLS           *tls.Config
	StateDir      string
}

// Start runs the service for the test and stops it at cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg := o.Config
	if cfg == nil {
		cfg = BoardConfig(t, "emulated-ruggedpod")
	}
	pwFile := filepath.Join(dir, "admin-password")
	const pw = "podos-admin-pw"
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := auth.Open(filepath.Join(dir, "state"), pwFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.SetBcryptCost(bcrypt.MinCost)
	lg, err := eventlog.Open(eventlog.Options{Dir: filepath.Join(dir, "events")})
	if err != nil {
		t.Fatal(err)
	}
	store := snapshot.NewStore()
	store.Swap(Snapshot(cfg, 1, time.Now().UTC().Truncate(time.Second), nil))
	bus := events.NewBus()
	svc, err := redfish.New(redfish.Options{
		Store: store, Events: lg, Bus: bus, SEL: o.SEL, Config: cfg, Auth: a,
		Extra: o.Extra, Mounts: o.Mounts, Version: "test", SELInterval: 200 * time.Millisecond,
		StateDir: filepath.Join(dir, "state"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tlsutil.Load(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(svc.Handler())
	hs.TLS = tc
	hs.StartTLS()
	client, err := TrustingClient(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		svc.Close()
		lg.Close()
	})
	return &Server{
		URL: hs.URL, Addr: strings.TrimPrefix(hs.URL, "https://"), Client: client,
		Admin: "admin", AdminPassword: pw, Config: cfg, Store: store, Bus: bus, Log: lg,
		Emitter: &events.Emitter{Log: lg, Bus: bus}, Auth: a, Service: svc, TLS: tc, StateDir: dir,
	}
}

// TrustingClient is an HTTPS client that trusts the given PEM
// certificate (boardd's self-signed one).
func TrustingClient(certFile string) (*http.Client, error) {
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("redfishtest: no certificate in " + certFile)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}, nil
}

// Response is a decoded response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// Do sends a request as user (empty user: no credentials) and decodes
// the JSON answer. body is marshaled unless it is a string or []byte.
func (s *Server) Do(t testing.TB, method, path, user, pw string, body any, hdr ...string) Response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.JSON); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %v: %s", method, path, err, b)
		}
	}
	return r
}

// Admin sends a request as the administrator.
func (s *Server) AsAdmin(t testing.TB, method, path string, body any, hdr ...string) Response {
	t.Helper()
	return s.Do(t, method, path, s.Admin, s.AdminPassword, body, hdr...)
}

// SSEEvent is one Server-Sent Event.
type SSEEvent struct {
	ID   string
	Data []byte
}

// Event decodes the event's Redfish Event payload.
func (e SSEEvent) Event() (map[string]any, error) {
	var m map[string]any
	err := json.Unmarshal(e.Data, &m)
	return m, err
}

// SSE opens a Server-Sent Events stream (GET url with Basic auth and
// an optional Last-Event-ID) and delivers its events until ctx ends or
// the stream closes. It returns once the stream is open (200).
func SSE(ctx context.Context, client *http.Client, url, user, pw, lastEventID string) (<-chan SSEEvent, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	c := *client
	c.Timeout = 0 // a stream has no overall deadline; ctx ends it
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("SSE %s: %s: %s", url, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("SSE %s: Content-Type %q", url, ct)
	}
	out := make(chan SSEEvent, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev SSEEvent
		var data bytes.Buffer
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data.Len() > 0 {
					ev.Data = bytes.TrimSuffix(data.Bytes(), []byte("\n"))
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = SSEEvent{}, bytes.Buffer{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id:"):
				ev.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
			case strings.HasPrefix(line, "data:"):
				data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
				data.WriteByte('\n')
			}
		}
	}()
	return out, nil
}

// WaitEvent reads events from c until one has a record whose MessageId
// ends with suffix, or the timeout passes.
func WaitEvent(c <-chan SSEEvent, suffix string, timeout time.Duration) (SSEEvent, map[string]any, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c:
			if !ok {
				return SSEEvent{}, nil, errors.New("SSE stream closed")
			}
			m, err := ev.Event()
			if err != nil {
				return ev, nil, err
			}
			recs, _ := m["Events"].([]any)
			for _, r := range recs {
				rec, _ := r.(map[string]any)
				if id, _ := rec["MessageId"].(string); strings.HasSuffix(id, suffix) {
					return ev, rec, nil
				}
			}
		case <-deadline:
			return SSEEvent{}, nil, fmt.Errorf("no event %q within %s", suffix, timeout)
		}
	}
}

// SeqString formats an event sequence number as an SSE id.
func SeqString(n uint64) string { return strconv.FormatUint(n, 10) }
