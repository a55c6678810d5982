package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmi"
	"podos.dev/podos/boardd/selsink"
)

// DialOptions tune one BMC connection.
type DialOptions struct {
	Timeout time.Duration // per request
	Retries int           // per request
	Logger  *slog.Logger
}

// DialFunc opens a BMC client for a URL (bmc/dial.Open's shape).
type DialFunc func(ctx context.Context, rawURL string, o DialOptions) (bmc.Client, error)

// CheckBMCURL tells whether boardd can use a BMC URL, without connecting.
func CheckBMCURL(raw string) error {
	_, err := parseBMCURL(raw)
	return err
}

type bmcURL struct {
	scheme, host, user, pass, path string
	port                           int
}

func parseBMCURL(raw string) (bmcURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return bmcURL{}, fmt.Errorf("bad BMC URL %q: %w", raw, err)
	}
	b := bmcURL{scheme: u.Scheme, path: u.Path}
	if u.User != nil {
		b.user = u.User.Username()
		b.pass, _ = u.User.Password()
	}
	switch u.Scheme {
	case "ipmi+lan", "ipmi+lanplus":
		host, port := u.Hostname(), u.Port()
		if host == "" {
			return bmcURL{}, fmt.Errorf("bad BMC URL %q: no host (want ipmi+lan://user:password@host[:port])", raw)
		}
		b.host, b.port = host, 623
		if port != "" {
			p, err := strconv.Atoi(port)
			if err != nil || p < 1 || p > 65535 {
				return bmcURL{}, fmt.Errorf("bad BMC URL %q: bad port %q", raw, port)
			}
			b.port = p
		}
	case "ipmi+kcs":
		if b.path == "" {
			b.path = "/dev/ipmi0"
		}
	case "":
		return bmcURL{}, fmt.Errorf("bad BMC URL %q: no scheme (want ipmi+kcs:///dev/ipmi0 or ipmi+lan://user:password@host:port)", raw)
	default:
		return bmcURL{}, fmt.Errorf("bad BMC URL %q: unsupported scheme %q (want ipmi+kcs or ipmi+lan)", raw, u.Scheme)
	}
	return b, nil
}

// transportOf names a BMC URL's transport as bmc.Client.Transport does.
func transportOf(raw string) string {
	b, err := parseBMCURL(raw)
	if err != nil {
		return ""
	}
	switch b.scheme {
	case "ipmi+kcs":
		return "kcs"
	case "ipmi+lan", "ipmi+lanplus":
		return "lan"
	}
	return ""
}

// defaultDial opens IPMI LAN and KCS clients with bmc/ipmi.
func defaultDial(ctx context.Context, raw string, o DialOptions) (bmc.Client, error) {
	b, err := parseBMCURL(raw)
	if err != nil {
		return nil, err
	}
	io := ipmi.Options{Timeout: o.Timeout, Retries: o.Retries, Logger: o.Logger}
	switch b.scheme {
	case "ipmi+kcs":
		return ipmi.OpenKCS(ctx, b.path, io)
	default:
		return ipmi.DialLAN(ctx, ipmi.LANConfig{Host: b.host, Port: b.port, Username: b.user, Password: b.pass}, io)
	}
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
