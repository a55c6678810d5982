package ipmi

// Unit tests of the transport-independent client logic (retries,
// backoff, reconnection, error classes) with a scripted fake transport:
// the same code serves LAN and KCS, so this is what the KCS path gets
// tested with on the host (it runs for real in qemu-tests).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/sensor"
	"github.com/bougou/go-ipmi/pkg/types"

	"podos.dev/podos/bmc"
)

var errNoReply = errors.New("i/o timeout")

// fakeConn answers Get Sensor Reading from a script: each exchange pops
// the next step (an error, or a response body).
type fakeConn struct {
	steps      []any // error or []byte
	exchanges  int
	reconnects int
	reconnErr  error
}

func (f *fakeConn) transport() string { return "kcs" }
func (f *fakeConn) close() error      { return nil }
func (f *fakeConn) reconnect(context.Context) error {
	f.reconnects++
	return f.reconnErr
}

func (f *fakeConn) exchange(ctx context.Context, req types.Request, resp types.Response) error {
	f.exchanges++
	if len(f.steps) == 0 {
		return errNoReply
	}
	step := f.steps[0]
	f.steps = f.steps[1:]
	switch s := step.(type) {
	case error:
		return s
	case []byte:
		return resp.Unpack(s)
	}
	panic("bad step")
}

func cc(code uint8) error { return types.NewResponseError(types.CompletionCode(code), "cc") }

func TestDoRetries(t *testing.T) {
	ok := []byte{100, 0xc0, 0x00}
	tests := []struct {
		name        string
		steps       []any
		reconnErr   error
		wantErr     error // nil, bmc.ErrUnavailable, or *CompletionError (matched by type)
		wantCC      uint8
		exchanges   int
		reconnects  int
		brokenAfter bool
	}{
		{name: "answer", steps: []any{ok}, exchanges: 1},
		{name: "one dropped reply absorbed", steps: []any{errNoReply, ok}, exchanges: 2},
		{name: "two dropped: new session, then answer", steps: []any{errNoReply, errNoReply, ok}, exchanges: 3, reconnects: 1},
		{name: "node busy retried", steps: []any{cc(0xc0), cc(0xc0), ok}, exchanges: 3},
		{name: "not present is final", steps: []any{cc(0xcb), ok}, wantCC: 0xcb, exchanges: 1},
		{name: "no answer at all", steps: nil, wantErr: bmc.ErrUnavailable, exchanges: 4, reconnects: 2, brokenAfter: true},
		{name: "no answer, reconnect fails", steps: nil, reconnErr: errors.New("refused"), wantErr: bmc.ErrUnavailable, exchanges: 2, reconnects: 2, brokenAfter: true},
		{name: "busy to the end: unavailable, session kept", steps: []any{cc(0xc0), cc(0xc0), cc(0xc0), cc(0xc0)}, wantErr: bmc.ErrUnavailable, exchanges: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeConn{steps: tt.steps, reconnErr: tt.reconnErr}
			c := newClient(f, Options{Timeout: 50 * time.Millisecond, Retries: 3, Backoff: time.Millisecond})
			resp := &sensor.GetSensorReadingResponse{}
			err := c.do(context.Background(), &sensor.GetSensorReadingRequest{SensorNumber: 1}, resp)
			var ce *CompletionError
			switch {
			case tt.wantCC != 0:
				if !errors.As(err, &ce) || ce.Code != tt.wantCC || errors.Is(err, bmc.ErrUnavailable) {
					t.Fatalf("err = %v, want completion code 0x%02x", err, tt.wantCC)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			default:
				if resp.Reading != 100 {
					t.Errorf("reading %d", resp.Reading)
				}
			}
			if f.exchanges != tt.exchanges || f.reconnects != tt.reconnects || c.broken != tt.brokenAfter {
				t.Errorf("exchanges/reconnects/broken = %d/%d/%v, want %d/%d/%v",
					f.exchanges, f.reconnects, c.broken, tt.exchanges, tt.reconnects, tt.brokenAfter)
			}
		})
	}
}

func TestDoHonorsContext(t *testing.T) {
	f := &fakeConn{}
	c := newClient(f, Options{Timeout: 50 * time.Millisecond, Retries: 5, Backoff: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.do(ctx, &sensor.GetSensorReadingRequest{SensorNumber: 1}, &sensor.GetSensorReadingResponse{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("do ignored the context for %v", time.Since(start))
	}
}

func TestReadStopsWhenBMCGone(t *testing.T) {
	th := SDR{Owner: 0x20, Number: 1, ReadingType: 0x01, Factors: Factors{M: 1, RExp: -1}, Name: "V"}
	disc := SDR{Owner: 0x20, Number: 2, ReadingType: 0x6f, SensorType: 0x08, Factors: Factors{Format: FormatNoAnalog}, Name: "PSU"}
	scan := byte(0x40) // scanning enabled
	f := &fakeConn{steps: []any{
		[]byte{240, scan, 0x08},      // 24.0 V, at UNC
		[]byte{0, scan, 0x03, 0x80},  // states 0, 1 (bit 15 of the mask is reserved)
		[]byte{0, scan | 0x20, 0x00}, // reading unavailable
		[]byte{0, 0x00, 0x00},        // scanning disabled
		cc(0xcb),                     // not present
	}}
	c := newClient(f, Options{Timeout: 20 * time.Millisecond, Retries: 1, Backoff: time.Millisecond})
	c.sdrs = map[string]SDR{th.ID(): th, disc.ID(): disc}
	defs := []bmc.SensorDef{{ID: th.ID()}, {ID: disc.ID()}, {ID: th.ID()}, {ID: th.ID()}, {ID: th.ID()}, {ID: "20-0-77"}}
	rs, err := c.Read(context.Background(), defs)
	if err != nil {
		t.Fatal(err)
	}
	if !rs[0].Available || rs[0].Value != 24 || rs[0].State != 0x08 {
		t.Errorf("threshold reading %+v", rs[0])
	}
	if !rs[1].Available || rs[1].State != 0x0003 {
		t.Errorf("discrete reading %+v", rs[1])
	}
	for i, want := range []string{"unavailable", "scanning disabled", "0xcb", "not in the BMC's SDR"} {
		r := rs[i+2]
		if r.Available || !strings.Contains(r.Err, want) {
			t.Errorf("reading %d = %+v, want unavailable with %q", i+2, r, want)
		}
	}

	// Now nothing answers: Read fails with ErrUnavailable after the first
	// sensor instead of waiting out every sensor's timeouts.
	f.steps, f.exchanges = nil, 0
	rs, err = c.Read(context.Background(), defs[:3])
	if !errors.Is(err, bmc.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if f.exchanges != 2 || len(rs) != 3 || rs[2].Err == "" || rs[2].Available {
		t.Errorf("exchanges %d, readings %+v", f.exchanges, rs)
	}
}
