package board

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// qmpConn is one QMP session. Hand-written (the protocol is a few JSON
// lines) rather than adding a QMP library to go.mod.
type qmpConn struct {
	c      net.Conn
	r      *bufio.Reader
	events []qmpEvent
}

type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

type qmpMsg struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
	QMP   json.RawMessage `json:"QMP"`
}

func dialQMP(ctx context.Context, path string) (*qmpConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if _, err := q.read(); err != nil { // greeting
		c.Close()
		return nil, err
	}
	if _, err := q.do("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

func (q *qmpConn) Close() error { return q.c.Close() }

func (q *qmpConn) read() (*qmpMsg, error) {
	line, err := q.r.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("qmp read: %w", err)
	}
	var m qmpMsg
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("qmp: bad message %q: %w", line, err)
	}
	return &m, nil
}

// do runs one command and returns its "return" value; events that arrive
// meanwhile are kept for waitEvent.
func (q *qmpConn) do(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp write: %w", err)
	}
	for {
		m, err := q.read()
		if err != nil {
			return nil, err
		}
		switch {
		case m.Event != "":
			q.events = append(q.events, qmpEvent{Event: m.Event, Data: m.Data})
		case m.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return m.Return, nil
		}
	}
}

// waitEvent waits for an event for which match returns true.
func (q *qmpConn) waitEvent(match func(qmpEvent) bool) error {
	for i, e := range q.events {
		if match(e) {
			q.events = q.events[i+1:]
			return nil
		}
	}
	q.events = nil
	for {
		m, err := q.read()
		if err != nil {
			return err
		}
		if m.Event != "" && match(qmpEvent{Event: m.Event, Data: m.Data}) {
			return nil
		}
	}
}

var errNotRunning = errors.New("board: QEMU is not running")
