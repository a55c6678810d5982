// Package ipmi is a bmc.Client over IPMI, built on go-ipmi
// (github.com/bougou/go-ipmi), for two transports that share everything
// but the wire: IPMI LAN (RMCP+, "lanplus") and the in-band system
// interface (KCS through the Linux driver's /dev/ipmiN, go-ipmi's "open"
// interface).
//
// Every request has a short timeout and a bounded number of retries with
// exponential backoff; the context is honored throughout. A request that
// gets no answer after its retries makes the client report
// bmc.ErrUnavailable; the LAN session is then re-opened by the next call,
// so a BMC that comes back is picked up without a new Client.
//
// Sensors are discovered from the SDR repository (full records: threshold
// sensors; compact records: discrete sensors); readings are converted with
// the SDR's linear factors. Only linear sensors are converted: others are
// reported with their reading unavailable.
package ipmi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	ipmiclient "github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/sensor"
	"github.com/bougou/go-ipmi/pkg/command/storage"
	"github.com/bougou/go-ipmi/pkg/types"

	"podos.dev/podos/bmc"
)

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// Timeout bounds one request/response exchange (default 1s).
	Timeout time.Duration
	// Retries is how many times a request that got no answer (or a
	// transient completion code) is sent again (default 3; negative
	// means none).
	Retries int
	// Backoff is the pause before the first retry, doubled for each
	// following one and capped at Timeout (default 50ms).
	Backoff time.Duration
	// Logger receives retries and reconnections at debug/info level.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Retries == 0 {
		o.Retries = 3
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// conn is the transport: the only part that differs between LAN and KCS.
type conn interface {
	// exchange sends one request and unpacks its response. Errors that
	// carry an IPMI completion code are *types.ResponseError.
	exchange(ctx context.Context, req types.Request, resp types.Response) error
	// reconnect drops the current session or device handle and opens a
	// new one.
	reconnect(ctx context.Context) error
	close() error
	transport() string
}

// Client is a bmc.Client over IPMI. It also implements bmc.SDRWatcher,
// bmc.SELReader and bmc.SELWriter. It is safe for concurrent use;
// requests are serialized.
type Client struct {
	conn conn
	opts Options
	log  *slog.Logger

	mu          sync.Mutex
	broken      bool // the last request got no answer: reconnect first
	reconnected bool // a reconnect happened since the last discovery
	sdrs        map[string]SDR
	stamp       repoStamp
	fingerprint [32]byte
	skipped     int
	fullReads   bool // Get SDR with count 0xff works on this BMC
	chunk       int  // partial Get SDR chunk size
}

func newClient(c conn, opts Options) *Client {
	opts = opts.withDefaults()
	return &Client{
		conn:      c,
		opts:      opts,
		log:       opts.Logger.With("bmc", c.transport()),
		fullReads: true,
		chunk:     32,
	}
}

var (
	_ bmc.Client     = (*Client)(nil)
	_ bmc.SDRWatcher = (*Client)(nil)
	_ bmc.SELReader  = (*Client)(nil)
	_ bmc.SELWriter  = (*Client)(nil)
)

// Transport returns "lan" or "kcs".
func (c *Client) Transport() string { return c.conn.transport() }

// Close ends the session (LAN) or closes the device (KCS).
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn.close()
}

// CompletionError is a request the BMC answered with a non-zero
// completion code: the BMC is there, the request failed.
type CompletionError struct {
	Command string
	Code    uint8
}

func (e *CompletionError) Error() string {
	return fmt.Sprintf("%s: completion code 0x%02x (%s)", e.Command, e.Code, ccText(e.Code))
}

func ccText(cc uint8) string {
	switch cc {
	case 0xc0:
		return "node busy"
	case 0xc1:
		return "invalid command"
	case 0xc3:
		return "timeout"
	case 0xc5:
		return "reservation canceled"
	case 0xc9:
		return "parameter out of range"
	case 0xca:
		return "cannot return requested length"
	case 0xcb:
		return "not present"
	case 0xcc:
		return "invalid data field"
	case 0xcd:
		return "illegal for sensor or record type"
	case 0xd4:
		return "insufficient privilege"
	case 0xd5:
		return "not supported in present state"
	case 0xff:
		return "unspecified error"
	}
	return "error"
}

// transientCC are completion codes worth a retry: the BMC is busy or
// timed out on its side.
func transientCC(cc uint8) bool {
	return cc == 0xc0 || cc == 0xc3 || cc == 0xff
}

// do sends one request with the client's timeout, retries and backoff.
// It returns *CompletionError when the BMC answered with an error, and an
// error wrapping bmc.ErrUnavailable when it did not answer at all.
// Callers hold c.mu.
func (c *Client) do(ctx context.Context, req types.Request, resp types.Response) error {
	name := req.Command().Name
	if c.broken {
		if err := c.reconnectLocked(ctx); err != nil {
			return fmt.Errorf("%w: %s: reconnect: %v", bmc.ErrUnavailable, name, err)
		}
	}
	backoff := c.opts.Backoff
	var lastErr error
	transport := false
	for attempt := 0; attempt <= c.opts.Retries; attempt++ {
		if attempt > 0 {
			c.log.Debug("ipmi retry", "cmd", name, "attempt", attempt, "err", lastErr)
			if err := sleep(ctx, backoff); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			backoff = min(2*backoff, c.opts.Timeout)
			// A second silent failure in a row: the session may be gone
			// (BMC restarted). Open a new one before trying again.
			if attempt >= 2 && transport {
				if err := c.reconnectLocked(ctx); err != nil {
					lastErr = err
					continue
				}
			}
		}
		actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		err := c.conn.exchange(actx, req, resp)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		var rerr *types.ResponseError
		if errors.As(err, &rerr) && rerr.CompletionCode() != 0 {
			cc := uint8(rerr.CompletionCode())
			if !transientCC(cc) {
				return &CompletionError{Command: name, Code: cc}
			}
			transport = false
			lastErr = &CompletionError{Command: name, Code: cc}
			continue
		}
		transport = true
		lastErr = err
	}
	if transport {
		c.broken = true
	}
	return fmt.Errorf("%w: %s: no answer after %d attempts: %v", bmc.ErrUnavailable, name, c.opts.Retries+1, lastErr)
}

func (c *Client) reconnectLocked(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 4*c.opts.Timeout)
	defer cancel()
	if err := c.conn.reconnect(rctx); err != nil {
		c.broken = true
		return err
	}
	c.log.Info("ipmi session re-opened")
	c.broken = false
	c.reconnected = true
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// rawRequest is a request whose body we pack ourselves.
type rawRequest struct {
	cmd  types.Command
	data []byte
}

func (r *rawRequest) Pack() []byte           { return r.data }
func (r *rawRequest) Command() types.Command { return r.cmd }

// rawResponse keeps the response body as bytes.
type rawResponse struct{ data []byte }

func (r *rawResponse) Unpack(b []byte) error { r.data = append([]byte(nil), b...); return nil }
func (r *rawResponse) Format() string        { return fmt.Sprintf("% x", r.data) }

// repoStamp identifies a version of the SDR repository.
type repoStamp struct {
	count       uint16
	added, gone uint32
}

func (c *Client) repoInfo(ctx context.Context) (repoStamp, error) {
	var r rawResponse
	if err := c.do(ctx, &storage.GetSDRRepoInfoRequest{}, &r); err != nil {
		return repoStamp{}, err
	}
	if len(r.data) < 13 {
		return repoStamp{}, fmt.Errorf("get sdr repository info: short response (%d bytes)", len(r.data))
	}
	le32 := func(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 }
	return repoStamp{
		count: uint16(r.data[1]) | uint16(r.data[2])<<8,
		added: le32(r.data[5:9]),
		gone:  le32(r.data[9:13]),
	}, nil
}

// readRecord reads one whole SDR record by hand rather than with go-ipmi's
// GetSDR: that asks for the whole record first (which ipmi_sim and many
// BMCs refuse over LAN, costing a round trip per record every time) and
// its partial-read fallback slices past the end of records shorter than
// its 16-byte chunk. Here a refused whole read is remembered, chunks
// shrink on 0xCA, and a canceled reservation is renewed.
func (c *Client) readRecord(ctx context.Context, id uint16) ([]byte, uint16, error) {
	var resv uint16
	get := func(off, n uint8) (*storage.GetSDRResponse, error) {
		for try := 0; ; try++ {
			resp := &storage.GetSDRResponse{}
			err := c.do(ctx, &storage.GetSDRRequest{ReservationID: resv, RecordID: id, ReadOffset: off, ReadBytes: n}, resp)
			var ce *CompletionError
			if errors.As(err, &ce) && ce.Code == 0xc5 && try < 2 {
				r := &storage.ReserveSDRRepoResponse{}
				if err := c.do(ctx, &storage.ReserveSDRRepoRequest{}, r); err != nil {
					return nil, err
				}
				resv = r.ReservationID
				continue
			}
			return resp, err
		}
	}
	if c.fullReads {
		resp, err := get(0, 0xff)
		var ce *CompletionError
		switch {
		case err == nil && len(resp.RecordData) >= headerLen && len(resp.RecordData) == int(resp.RecordData[4])+headerLen:
			return resp.RecordData, resp.NextRecordID, nil
		case err == nil, errors.As(err, &ce) && (ce.Code == 0xca || ce.Code == 0xc7 || ce.Code == 0xc8):
			c.fullReads = false // fall through to partial reads
		default:
			return nil, 0, err
		}
	}
	hdr, err := get(0, headerLen)
	if err != nil {
		return nil, 0, err
	}
	if len(hdr.RecordData) < headerLen {
		return nil, 0, fmt.Errorf("sdr record 0x%04x: header of %d bytes", id, len(hdr.RecordData))
	}
	total := int(hdr.RecordData[4]) + headerLen
	data := append(make([]byte, 0, total), hdr.RecordData[:headerLen]...)
	for len(data) < total {
		n := min(c.chunk, total-len(data))
		resp, err := get(uint8(len(data)), uint8(n))
		var ce *CompletionError
		if errors.As(err, &ce) && ce.Code == 0xca && c.chunk > 8 {
			c.chunk /= 2
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if len(resp.RecordData) == 0 {
			return nil, 0, fmt.Errorf("sdr record 0x%04x: empty read at offset %d", id, len(data))
		}
		data = append(data, resp.RecordData[:min(len(resp.RecordData), total-len(data))]...)
	}
	return data, hdr.NextRecordID, nil
}

// maxRecords bounds an SDR walk against a repository whose next-record
// chain loops.
const maxRecords = 4096

// readRepository walks the SDR repository and returns every raw record.
func (c *Client) readRepository(ctx context.Context) ([][]byte, error) {
	var recs [][]byte
	seen := map[uint16]bool{}
	id := uint16(0)
	for range maxRecords {
		rec, next, err := c.readRecord(ctx, id)
		if err != nil {
			var ce *CompletionError
			if id == 0 && errors.As(err, &ce) && ce.Code == 0xcb {
				return nil, nil // empty repository
			}
			return nil, fmt.Errorf("read sdr 0x%04x: %w", id, err)
		}
		recs = append(recs, rec)
		seen[id] = true
		if next == 0xffff || seen[next] {
			return recs, nil
		}
		id = next
	}
	return nil, fmt.Errorf("sdr repository has more than %d records (looping chain?)", maxRecords)
}

// Sensors discovers every sensor from the SDR repository. Records that
// are not full or compact sensor records are skipped (see Skipped).
func (c *Client) Sensors(ctx context.Context) ([]bmc.SensorDef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.discoverLocked(ctx)
}

// Skipped returns how many SDR records the last discovery skipped
// because they describe no sensor (or could not be decoded).
func (c *Client) Skipped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.skipped
}

func (c *Client) discoverLocked(ctx context.Context) ([]bmc.SensorDef, error) {
	stamp, err := c.repoInfo(ctx)
	if err != nil {
		return nil, err
	}
	recs, err := c.readRepository(ctx)
	if err != nil {
		return nil, err
	}
	sdrs := make(map[string]SDR)
	var defs []bmc.SensorDef
	skipped := 0
	h := sha256.New()
	for _, rec := range recs {
		h.Write(rec)
		decoded, err := DecodeSDR(rec)
		if err != nil {
			if !errors.Is(err, ErrNotSensor) {
				c.log.Warn("undecodable sdr record skipped", "err", err)
			}
			skipped++
			continue
		}
		for _, s := range decoded {
			def := bmc.SensorDef{
				ID: s.ID(), Name: s.Name, Owner: s.Owner, LUN: s.LUN, Number: s.Number,
				SensorType: s.SensorType, ReadingType: s.ReadingType,
				EntityID: s.EntityID, EntityInstance: s.EntityInst,
				Kind: bmc.KindDiscrete, Unit: UnitOf(&s), Class: ClassOf(&s),
			}
			if s.IsThreshold() {
				def.Kind = bmc.KindThreshold
				th, err := c.thresholds(ctx, &s)
				if errors.Is(err, bmc.ErrUnavailable) || ctx.Err() != nil {
					return nil, err
				}
				if err != nil {
					c.log.Warn("sensor thresholds unreadable", "sensor", s.Name, "err", err)
				}
				def.Thresholds = th
			}
			if _, dup := sdrs[def.ID]; dup {
				c.log.Warn("duplicate sensor id in sdr repository", "id", def.ID, "name", s.Name)
				continue
			}
			sdrs[def.ID] = s
			defs = append(defs, def)
		}
	}
	c.sdrs = sdrs
	c.stamp = stamp
	copy(c.fingerprint[:], h.Sum(nil))
	c.skipped = skipped
	c.reconnected = false
	return defs, nil
}

// thresholds reads a threshold sensor's thresholds (Get Sensor Thresholds
// when the SDR says they are readable, else the SDR's own values) and its
// hysteresis (from the SDR), converted to the sensor's unit.
func (c *Client) thresholds(ctx context.Context, s *SDR) (bmc.Thresholds, error) {
	var th bmc.Thresholds
	if s.Factors.Format == FormatNoAnalog || s.Factors.Linearization != 0 {
		return th, nil
	}
	mask, raw := uint8(0), s.RawThresholds
	var err error
	switch s.ThresholdAccess {
	case 1, 2: // readable (and settable): ask the sensor
		resp := &sensor.GetSensorThresholdsResponse{}
		err = c.do(withLUN(ctx, s), &sensor.GetSensorThresholdsRequest{SensorNumber: s.Number}, resp)
		if err == nil {
			mask = bits(resp.LNC_Readable, resp.LCR_Readable, resp.LNR_Readable, resp.UNC_Readable, resp.UCR_Readable, resp.UNR_Readable)
			raw = [6]uint8{resp.LNC_Raw, resp.LCR_Raw, resp.LNR_Raw, resp.UNC_Raw, resp.UCR_Raw, resp.UNR_Raw}
		} else if errors.Is(err, bmc.ErrUnavailable) {
			return th, err
		} else {
			mask = s.ReadableThresholds // fall back to the SDR's values
		}
	case 3: // fixed: only in the SDR
		mask = s.ReadableThresholds
	}
	conv := func(i int) *float64 {
		if mask&(1<<i) == 0 {
			return nil
		}
		v, cerr := ConvertReading(s.Factors, raw[i])
		if cerr != nil {
			return nil
		}
		return &v
	}
	th.LowerNonCritical, th.LowerCritical, th.LowerFatal = conv(IdxLNC), conv(IdxLC), conv(IdxLNR)
	th.UpperNonCritical, th.UpperCritical, th.UpperFatal = conv(IdxUNC), conv(IdxUC), conv(IdxUNR)
	if s.HysteresisAccess != 0 {
		th.PositiveHysteresis, _ = ConvertHysteresis(s.Factors, s.RawPosHyst)
		th.NegativeHysteresis, _ = ConvertHysteresis(s.Factors, s.RawNegHyst)
	}
	return th, err
}

func bits(b ...bool) uint8 {
	var m uint8
	for i, v := range b {
		if v {
			m |= 1 << i
		}
	}
	return m
}

// Read samples the given sensors, one Get Sensor Reading each. It stops
// at the first sensor that gets no answer and returns an error wrapping
// bmc.ErrUnavailable: the BMC is gone, the rest would only wait out
// their timeouts too.
func (c *Client) Read(ctx context.Context, defs []bmc.SensorDef) ([]bmc.Reading, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sdrs == nil {
		if _, err := c.discoverLocked(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]bmc.Reading, len(defs))
	for i, d := range defs {
		r := &out[i]
		r.ID = d.ID
		s, ok := c.sdrs[d.ID]
		if !ok {
			r.Err = "sensor not in the BMC's SDR repository"
			r.Time = time.Now()
			continue
		}
		resp := &sensor.GetSensorReadingResponse{}
		err := c.do(withLUN(ctx, &s), &sensor.GetSensorReadingRequest{SensorNumber: s.Number}, resp)
		r.Time = time.Now()
		if err != nil {
			if errors.Is(err, bmc.ErrUnavailable) || ctx.Err() != nil {
				for j := i; j < len(out); j++ {
					out[j].ID, out[j].Time, out[j].Err = defs[j].ID, r.Time, err.Error()
				}
				return out, err
			}
			r.Err = err.Error()
			continue
		}
		fillReading(r, &s, resp)
	}
	return out, nil
}

// fillReading turns a Get Sensor Reading response into a Reading.
func fillReading(r *bmc.Reading, s *SDR, resp *sensor.GetSensorReadingResponse) {
	switch {
	case resp.ReadingUnavailable:
		r.Err = "reading unavailable (initial update in progress)"
		return
	case resp.SensorScanningDisabled:
		r.Err = "sensor scanning disabled"
		return
	}
	if s.IsThreshold() {
		r.State = uint16(resp.OptionalData1 & 0x3f)
		v, err := ConvertReading(s.Factors, resp.Reading)
		if err != nil {
			r.Err = err.Error()
			return
		}
		r.Value = v
	} else {
		r.State = uint16(resp.OptionalData1) | uint16(resp.OptionalData2&0x7f)<<8
	}
	r.Available = true
}

// SDRChanged reports whether the SDR repository changed since the last
// Sensors call: its record count or most recent addition/erase time
// differ, or, after the session had to be re-opened (the BMC may have
// restarted with another repository), its content differs.
func (c *Client) SDRChanged(ctx context.Context) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sdrs == nil {
		return true, nil
	}
	stamp, err := c.repoInfo(ctx)
	if err != nil {
		return false, err
	}
	if stamp != c.stamp {
		return true, nil
	}
	if !c.reconnected {
		return false, nil
	}
	recs, err := c.readRepository(ctx)
	if err != nil {
		return false, err
	}
	h := sha256.New()
	for _, rec := range recs {
		h.Write(rec)
	}
	var fp [32]byte
	copy(fp[:], h.Sum(nil))
	if fp != c.fingerprint {
		return true, nil
	}
	c.reconnected = false
	return false, nil
}

// SEL reads every System Event Log entry.
func (c *Client) SEL(ctx context.Context) ([]bmc.SELEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []bmc.SELEntry
	seen := map[uint16]bool{}
	id := uint16(0)
	for range 0x10000 {
		resp := &storage.GetSELEntryResponse{}
		err := c.do(ctx, &storage.GetSELEntryRequest{RecordID: id, ReadBytes: 0xff}, resp)
		if err != nil {
			var ce *CompletionError
			if id == 0 && errors.As(err, &ce) && ce.Code == 0xcb {
				return nil, nil // empty SEL
			}
			return out, fmt.Errorf("read sel entry 0x%04x: %w", id, err)
		}
		e, err := ParseSEL(resp.Data)
		if err != nil {
			return out, fmt.Errorf("sel entry 0x%04x: %w", id, err)
		}
		out = append(out, e)
		seen[id] = true
		if resp.NextRecordID == 0xffff || seen[resp.NextRecordID] {
			break
		}
		id = resp.NextRecordID
	}
	return out, nil
}

// AddSEL adds a system event record (type 0x02) generated by boardd as
// system software (generator 0x0041, EvMRev 0x04).
func (c *Client) AddSEL(ctx context.Context, ev bmc.SELEvent) (uint16, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := &storage.AddSELEntryResponse{}
	if err := c.do(ctx, &rawRequest{cmd: types.CommandAddSELEntry, data: PackSEL(ev)}, resp); err != nil {
		return 0, err
	}
	return resp.RecordID, nil
}

type lunKey struct{}

// withLUN addresses a sensor request to the sensor's LUN: go-ipmi's
// command context for LAN, our own context value for KCS. Sensors owned
// by another controller than the BMC are still asked of the BMC (no
// bridging).
func withLUN(ctx context.Context, s *SDR) context.Context {
	if s.LUN == 0 {
		return ctx
	}
	ctx = context.WithValue(ctx, lunKey{}, s.LUN)
	return ipmiclient.WithCommandContext(ctx, (&ipmiclient.CommandContext{}).WithResponderLUN(s.LUN))
}

func lunFromContext(ctx context.Context) *uint8 {
	if v, ok := ctx.Value(lunKey{}).(uint8); ok {
		return &v
	}
	return nil
}

// SetSELTime sets the clock the BMC stamps SEL records with. A BMC
// without a battery-backed clock (and ipmi_sim, which counts from its
// host's boot) needs it once the board knows the time.
func (c *Client) SetSELTime(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.do(ctx, &storage.SetSELTimeRequest{Time: t}, &storage.SetSELTimeResponse{})
}
