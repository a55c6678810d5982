// Package redfishbmc is a bmc.Client over DMTF Redfish, built on gofish
// (github.com/stmcginnis/gofish, kept at v0.20.0 for bmclib). It reads
// every Chassis' Sensors collection: ReadingUnits map to bmc.Unit,
// ReadingType (then units, physical context and name) to bmc.Class, and
// the Sensor's Thresholds to bmc.Thresholds (Caution = non-critical,
// Critical, Fatal). Power supplies (PowerSubsystem) and leak detectors
// (Chassis.LeakDetectors, ThermalSubsystem.LeakDetection) become discrete
// sensors whose states use the IPMI offsets, so policy treats both
// transports alike (see PSUState, LeakState).
package redfishbmc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/redfish"

	"podos.dev/podos/bmc"
)

// Config addresses a Redfish service.
type Config struct {
	// Endpoint is the service's base URL, "https://host[:port]".
	Endpoint string
	Username string
	Password string
}

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// Timeout bounds one HTTP request (default 5s: Redfish services
	// answer slower than IPMI).
	Timeout time.Duration
	// Retries after a request got no answer or a 5xx (default 3; negative
	// means none).
	Retries int
	// Backoff before the first retry, doubled each time (default 100ms).
	Backoff time.Duration
	// InsecureTLS accepts any server certificate. BMCs ship self-signed
	// certificates, so the dialer turns it on unless told to verify.
	InsecureTLS bool
	Logger      *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 3
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Client is a bmc.Client over Redfish.
type Client struct {
	cfg  Config
	opts Options
	http *http.Client
	api  *gofish.APIClient

	mu      sync.Mutex
	entries map[string]entry // sensor ID -> resource
}

// What a discovered sensor is read from.
type entryKind int

const (
	kindSensor entryKind = iota // a Sensor resource: a numeric reading
	kindPSU                     // a PowerSupply: discrete status
	kindLeak                    // a LeakDetector: discrete state
)

type entry struct {
	url  string
	kind entryKind
}

var _ bmc.Client = (*Client)(nil)

// Dial connects to a Redfish service with HTTP basic authentication (no
// session to expire or leak).
func Dial(ctx context.Context, cfg Config, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if !strings.HasPrefix(cfg.Endpoint, "https://") && !strings.HasPrefix(cfg.Endpoint, "http://") {
		return nil, fmt.Errorf("redfish: endpoint %q is not an http(s) URL", cfg.Endpoint)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: opts.InsecureTLS} //nolint:gosec // documented option for self-signed BMCs
	hc := &http.Client{Transport: tr, Timeout: opts.Timeout}
	c := &Client{cfg: cfg, opts: opts, http: hc}
	var err error
	err = c.retry(ctx, "connect", func() (bool, error) {
		// gofish keeps this context for every later call: it must not be
		// the dial's (often short-lived) one.
		c.api, err = gofish.ConnectContext(context.WithoutCancel(ctx), gofish.ClientConfig{
			Endpoint: cfg.Endpoint, Username: cfg.Username, Password: cfg.Password,
			BasicAuth: true, HTTPClient: hc, ReuseConnections: true,
			// gofish fetches collection members three at a time: let them
			// through rather than queue behind one another.
			MaxConcurrentRequests: 4,
		})
		return retryable(err), err
	})
	if err != nil {
		return nil, fmt.Errorf("redfish %s: %w", cfg.Endpoint, err)
	}
	// The service root needs no credentials: check them on the Chassis
	// collection so a wrong password fails here, not at the first poll.
	var coll struct{}
	if err := c.get(ctx, "/redfish/v1/Chassis", &coll); err != nil {
		var he *httpError
		if errors.As(err, &he) && (he.code == http.StatusUnauthorized || he.code == http.StatusForbidden) {
			return nil, fmt.Errorf("redfish %s: credentials rejected (HTTP %d)", cfg.Endpoint, he.code)
		}
		return nil, fmt.Errorf("redfish %s: %w", cfg.Endpoint, err)
	}
	return c, nil
}

// Transport returns "redfish".
func (c *Client) Transport() string { return "redfish" }

// Close drops idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// retryable tells a failure worth another try (no answer, 5xx) from a
// definite one (4xx, bad data).
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var he *httpError
	if errors.As(err, &he) {
		return he.code >= 500
	}
	s := strings.ToLower(err.Error())
	// gofish reports HTTP failures as text ("503: ...") and collection
	// failures as one error listing each member's.
	return strings.HasPrefix(s, "5") || strings.Contains(s, "connection refused") || strings.Contains(s, "timeout") ||
		strings.Contains(s, "deadline exceeded") || strings.Contains(s, "connection reset") || strings.Contains(s, "eof")
}

// retry runs f with the client's retries and backoff. After the last
// failed attempt of a retryable error, the error wraps
// bmc.ErrUnavailable.
func (c *Client) retry(ctx context.Context, what string, f func() (bool, error)) error {
	backoff := c.opts.Backoff
	var err error
	var again bool
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %w", what, ctx.Err())
			case <-t.C:
			}
			backoff *= 2
		}
		again, err = f()
		if err == nil || !again || ctx.Err() != nil {
			return err
		}
		c.opts.Logger.Debug("redfish retry", "what", what, "attempt", attempt, "err", err)
	}
	return fmt.Errorf("%w: %s: %v", bmc.ErrUnavailable, what, err)
}

type httpError struct {
	url  string
	code int
}

func (e *httpError) Error() string { return fmt.Sprintf("GET %s: HTTP %d", e.url, e.code) }

// get fetches one resource with the request's context (gofish's client
// carries the context it was created with, not each call's).
func (c *Client) get(ctx context.Context, path string, v any) error {
	return c.retry(ctx, "GET "+path, func() (bool, error) {
		rctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, strings.TrimRight(c.cfg.Endpoint, "/")+path, nil)
		if err != nil {
			return false, err
		}
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
		req.Header.Set("Accept", "application/json")
		resp, err := c.http.Do(req)
		if err != nil {
			return true, err
		}
		defer func() {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // keep the connection reusable
			resp.Body.Close()
		}()
		if resp.StatusCode != http.StatusOK {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			herr := &httpError{url: path, code: resp.StatusCode}
			return herr.code >= 500, herr
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v); err != nil {
			return false, fmt.Errorf("GET %s: %w", path, err)
		}
		return false, nil
	})
}

// sensorState is what a Read needs from a Sensor resource. It is decoded
// by hand because gofish's Sensor.Reading is a float32 that cannot say
// null (reading unavailable), and its Thresholds cannot tell an absent
// threshold from a zero one.
type sensorState struct {
	Reading *float64 `json:"Reading"`
	Status  struct {
		State  string `json:"State"`
		Health string `json:"Health"`
	} `json:"Status"`
	Thresholds map[string]struct {
		Reading           *float64 `json:"Reading"`
		HysteresisReading *float64 `json:"HysteresisReading"`
	} `json:"Thresholds"`
	// PowerSupply and LeakDetector resources.
	LineInputStatus string `json:"LineInputStatus"`
	DetectorState   string `json:"DetectorState"`
}

type link struct {
	ID string `json:"@odata.id"`
}

// links are the navigation properties the discovery follows by hand.
type links struct {
	LeakDetectors    *link  `json:"LeakDetectors"`
	ThermalSubsystem *link  `json:"ThermalSubsystem"`
	LeakDetection    *link  `json:"LeakDetection"`
	Members          []link `json:"Members"`
	ID               string `json:"Id"`
	Name             string `json:"Name"`
}

// Sensors discovers the sensors of every chassis.
func (c *Client) Sensors(ctx context.Context) ([]bmc.SensorDef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var chassis []*redfish.Chassis
	err := c.retry(ctx, "list chassis", func() (bool, error) {
		var err error
		chassis, err = c.api.Service.Chassis()
		return retryable(err), err
	})
	if err != nil {
		return nil, err
	}
	entries := map[string]entry{}
	var defs []bmc.SensorDef
	add := func(id, chassisID string, e entry, def bmc.SensorDef) {
		if _, dup := entries[id]; dup || id == "" {
			id = chassisID + "/" + id
		}
		def.ID = id
		entries[id] = e
		defs = append(defs, def)
	}
	for _, ch := range chassis {
		var sensors []*redfish.Sensor
		err := c.retry(ctx, "sensors of chassis "+ch.ID, func() (bool, error) {
			var err error
			sensors, err = ch.Sensors()
			return retryable(err), err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range sensors {
			var st sensorState
			if err := c.get(ctx, s.ODataID, &st); err != nil {
				return nil, err
			}
			add(s.ID, ch.ID, entry{url: s.ODataID, kind: kindSensor}, bmc.SensorDef{
				Name:       s.Name,
				Kind:       bmc.KindThreshold,
				Unit:       UnitOf(s.ReadingUnits),
				Class:      ClassOf(string(s.ReadingType), s.ReadingUnits, string(s.PhysicalContext), s.Name),
				Thresholds: thresholdsOf(st),
			})
		}
		// Power supplies and leak detectors are extras: a service that
		// links them but fails to serve them still has its sensors.
		psus, err := c.powerSupplies(ctx, ch)
		if err != nil {
			if errors.Is(err, bmc.ErrUnavailable) || ctx.Err() != nil {
				return nil, err
			}
			c.opts.Logger.Warn("redfish power supplies unreadable", "chassis", ch.ID, "err", err)
		}
		for _, p := range psus {
			add("PowerSupply/"+p.ID, ch.ID, entry{url: p.ODataID, kind: kindPSU}, bmc.SensorDef{
				Name: p.Name, Kind: bmc.KindDiscrete, Class: bmc.ClassPSU,
				SensorType: 0x08, ReadingType: 0x6f,
			})
		}
		leaks, err := c.leakDetectors(ctx, ch.ODataID)
		if err != nil {
			if errors.Is(err, bmc.ErrUnavailable) || ctx.Err() != nil {
				return nil, err
			}
			c.opts.Logger.Warn("redfish leak detectors unreadable", "chassis", ch.ID, "err", err)
		}
		for _, l := range leaks {
			add("LeakDetector/"+l.ID, ch.ID, entry{url: l.url, kind: kindLeak}, bmc.SensorDef{
				Name: l.Name, Kind: bmc.KindDiscrete, Class: bmc.ClassLeak,
				SensorType: 0x0a, ReadingType: 0x03,
			})
		}
	}
	c.entries = entries
	return defs, nil
}

func (c *Client) powerSupplies(ctx context.Context, ch *redfish.Chassis) ([]*redfish.PowerSupply, error) {
	var psus []*redfish.PowerSupply
	err := c.retry(ctx, "power supplies of chassis "+ch.ID, func() (bool, error) {
		ps, err := ch.PowerSubsystem()
		if err != nil || ps == nil {
			return retryable(err), err
		}
		psus, err = ps.PowerSupplies()
		return retryable(err), err
	})
	return psus, err
}

type leakRef struct{ ID, Name, url string }

// leakDetectors follows Chassis.LeakDetectors and
// ThermalSubsystem.LeakDetection.LeakDetectors by hand: gofish v0.20
// reads LeakDetection, a single resource, as a collection.
func (c *Client) leakDetectors(ctx context.Context, chassisURL string) ([]leakRef, error) {
	var ch links
	if err := c.get(ctx, chassisURL, &ch); err != nil {
		return nil, err
	}
	var colls []string
	if ch.LeakDetectors != nil {
		colls = append(colls, ch.LeakDetectors.ID)
	}
	if ch.ThermalSubsystem != nil {
		var ts links
		if err := c.get(ctx, ch.ThermalSubsystem.ID, &ts); err != nil {
			return nil, err
		}
		if ts.LeakDetection != nil {
			var ld links
			if err := c.get(ctx, ts.LeakDetection.ID, &ld); err != nil {
				return nil, err
			}
			if ld.LeakDetectors != nil {
				colls = append(colls, ld.LeakDetectors.ID)
			}
		}
	}
	var out []leakRef
	seen := map[string]bool{}
	for _, coll := range colls {
		var l links
		if err := c.get(ctx, coll, &l); err != nil {
			return nil, err
		}
		for _, m := range l.Members {
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			var d links
			if err := c.get(ctx, m.ID, &d); err != nil {
				return nil, err
			}
			out = append(out, leakRef{ID: d.ID, Name: d.Name, url: m.ID})
		}
	}
	return out, nil
}

func thresholdsOf(st sensorState) bmc.Thresholds {
	var th bmc.Thresholds
	get := func(name string) *float64 {
		if t, ok := st.Thresholds[name]; ok && t.Reading != nil {
			v := *t.Reading
			return &v
		}
		return nil
	}
	th.LowerNonCritical, th.LowerCritical, th.LowerFatal = get("LowerCaution"), get("LowerCritical"), get("LowerFatal")
	th.UpperNonCritical, th.UpperCritical, th.UpperFatal = get("UpperCaution"), get("UpperCritical"), get("UpperFatal")
	for _, t := range st.Thresholds {
		if t.HysteresisReading != nil && *t.HysteresisReading > th.PositiveHysteresis {
			th.PositiveHysteresis = *t.HysteresisReading
			th.NegativeHysteresis = *t.HysteresisReading
		}
	}
	return th
}

// Read fetches each sensor. A null Reading, or a Status.State that says
// the sensor is absent or offline, makes the reading unavailable. It
// stops at the first sensor the service does not answer for.
func (c *Client) Read(ctx context.Context, defs []bmc.SensorDef) ([]bmc.Reading, error) {
	c.mu.Lock()
	entries := c.entries
	c.mu.Unlock()
	out := make([]bmc.Reading, len(defs))
	for i, d := range defs {
		r := &out[i]
		r.ID = d.ID
		e, ok := entries[d.ID]
		if !ok {
			r.Err, r.Time = "sensor not discovered on this service", time.Now()
			continue
		}
		var st sensorState
		err := c.get(ctx, e.url, &st)
		r.Time = time.Now()
		if err != nil {
			r.Err = err.Error()
			if errors.Is(err, bmc.ErrUnavailable) || ctx.Err() != nil {
				for j := i + 1; j < len(out); j++ {
					out[j].ID, out[j].Time, out[j].Err = defs[j].ID, r.Time, err.Error()
				}
				return out, err
			}
			continue
		}
		switch e.kind {
		case kindPSU:
			r.State, r.Available = PSUState(st.Status.State, st.Status.Health, st.LineInputStatus), true
		case kindLeak:
			r.State, r.Available = LeakState(st.DetectorState), st.DetectorState != ""
			if !r.Available {
				r.Err = "no DetectorState"
			}
		default:
			switch {
			case st.Reading == nil:
				r.Err = "reading is null"
			case offline(st.Status.State):
				r.Err = "sensor state " + st.Status.State
			default:
				r.Value, r.Available = *st.Reading, true
			}
		}
	}
	return out, nil
}

func offline(state string) bool {
	switch state {
	case "Absent", "UnavailableOffline", "StandbyOffline", "Disabled":
		return true
	}
	return false
}

// PSUState maps a PowerSupply's status to the IPMI power supply
// sensor-specific offsets (sensor type 0x08, reading type 0x6f), so
// policy treats Redfish and IPMI PSUs alike: bit 0 presence detected,
// 1 failure detected (Health Critical), 2 predictive failure (Health
// Warning), 3 input lost (LineInputStatus LossOfInput), 5 input out of
// range but present (OutOfRange).
func PSUState(state, health, lineInput string) uint16 {
	var m uint16
	if state != "Absent" {
		m |= 1 << 0
	}
	switch health {
	case "Critical":
		m |= 1 << 1
	case "Warning":
		m |= 1 << 2
	}
	switch lineInput {
	case "LossOfInput":
		m |= 1 << 3
	case "OutOfRange":
		m |= 1 << 5
	}
	return m
}

// LeakState maps a LeakDetector's DetectorState to the IPMI digital
// discrete offsets (reading type 0x03): bit 0 "deasserted" (OK), bit 1
// "asserted" (Warning or Critical: a leak).
func LeakState(detector string) uint16 {
	switch detector {
	case "OK":
		return 1 << 0
	case "Warning", "Critical":
		return 1 << 1
	}
	return 0
}

// UnitOf maps Redfish ReadingUnits (UCUM) to a bmc.Unit.
func UnitOf(units string) bmc.Unit {
	switch units {
	case "":
		return bmc.UnitNone
	case "Cel":
		return bmc.UnitCelsius
	case "V":
		return bmc.UnitVolts
	case "A":
		return bmc.UnitAmperes
	case "W":
		return bmc.UnitWatts
	case "RPM", "{rev}/min", "1/min":
		return bmc.UnitRPM
	case "%":
		return bmc.UnitPercent
	}
	return bmc.UnitOther
}

// ClassOf derives a sensor's class: ReadingType first (Temperature,
// Voltage, Current, Power, Rotational), then units; a rotational or fan
// percentage sensor is a pump when its PhysicalContext is "Pump" or its
// name says pump, else a fan.
func ClassOf(readingType, units, physicalContext, name string) bmc.Class {
	lname := strings.ToLower(name)
	spin := func() bmc.Class {
		if physicalContext == "Pump" || strings.Contains(lname, "pump") {
			return bmc.ClassPump
		}
		return bmc.ClassFan
	}
	switch readingType {
	case "Temperature":
		return bmc.ClassTemperature
	case "Voltage":
		return bmc.ClassVoltage
	case "Current":
		return bmc.ClassCurrent
	case "Power":
		return bmc.ClassPower
	case "Rotational":
		return spin()
	case "Percent":
		if physicalContext == "Fan" || physicalContext == "Pump" || strings.Contains(lname, "fan") || strings.Contains(lname, "pump") {
			return spin()
		}
		return bmc.ClassOther
	case "":
	default:
		return bmc.ClassOther
	}
	switch UnitOf(units) {
	case bmc.UnitCelsius:
		return bmc.ClassTemperature
	case bmc.UnitVolts:
		return bmc.ClassVoltage
	case bmc.UnitAmperes:
		return bmc.ClassCurrent
	case bmc.UnitWatts:
		return bmc.ClassPower
	case bmc.UnitRPM:
		return spin()
	}
	return bmc.ClassOther
}
