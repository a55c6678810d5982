package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/dial"
	"podos.dev/podos/boardd/selsink"
)

// DialFunc opens a BMC client for a URL (default bmc/dial.Open).
type DialFunc func(ctx context.Context, rawURL string, o dial.Options) (bmc.Client, error)

// CheckBMCURL tells whether boardd can use a BMC URL, without connecting.
func CheckBMCURL(raw string) error {
	_, err := dial.Parse(raw)
	return err
}

// transportOf names a BMC URL's transport as bmc.Client.Transport does.
func transportOf(raw string) string {
	t, err := dial.Parse(raw)
	if err != nil {
		return ""
	}
	switch t.Scheme {
	case dial.SchemeKCS:
		return "kcs"
	case dial.SchemeLAN:
		return "lan"
	case dial.SchemeRedfish:
		return "redfish"
	}
	return ""
}

// redactURL renders a BMC URL for logs, without its password.
func redactURL(raw string) string {
	t, err := dial.Parse(raw)
	if err != nil {
		return "(invalid)"
	}
	return t.String()
}

// auxConn is a second BMC connection, opened on first use, for the SEL
// sink and the Redfish SEL reader, so that neither ever waits behind (or
// delays) the collector's polls.
type auxConn struct {
	dial func(ctx context.Context) (bmc.Client, error)
	mu   sync.Mutex
	c    bmc.Client
}

var (
	_ bmc.SELReader = (*auxConn)(nil)
	_ bmc.SELWriter = (*auxConn)(nil)
)

func (a *auxConn) get(ctx context.Context) (bmc.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c == nil {
		c, err := a.dial(ctx)
		if err != nil {
			return nil, err
		}
		a.c = c
	}
	return a.c, nil
}

// drop forgets a client that failed so the next use dials again.
func (a *auxConn) drop(c bmc.Client, err error) {
	if !errors.Is(err, bmc.ErrUnavailable) && !isNetErr(err) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c == c {
		a.c.Close()
		a.c = nil
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// SEL implements bmc.SELReader.
func (a *auxConn) SEL(ctx context.Context) ([]bmc.SELEntry, error) {
	c, err := a.get(ctx)
	if err != nil {
		return nil, err
	}
	r, ok := c.(bmc.SELReader)
	if !ok {
		return nil, fmt.Errorf("the %s BMC client cannot read the SEL", c.Transport())
	}
	es, err := r.SEL(ctx)
	if err != nil {
		a.drop(c, err)
	}
	return es, err
}

// AddSEL implements bmc.SELWriter.
func (a *auxConn) AddSEL(ctx context.Context, ev bmc.SELEvent) (uint16, error) {
	c, err := a.get(ctx)
	if err != nil {
		return 0, err
	}
	w, ok := c.(bmc.SELWriter)
	if !ok {
		return 0, fmt.Errorf("%w (%s)", selsink.ErrNoSELWriter, c.Transport())
	}
	id, err := w.AddSEL(ctx, ev)
	if err != nil {
		a.drop(c, err)
	}
	return id, err
}

// Close closes the connection if open.
func (a *auxConn) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c != nil {
		err := a.c.Close()
		a.c = nil
		return err
	}
	return nil
}
