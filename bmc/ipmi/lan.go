package ipmi

import (
	"context"
	"fmt"
	"time"

	ipmiclient "github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// LANConfig addresses a BMC over IPMI LAN (RMCP+).
type LANConfig struct {
	Host     string
	Port     int // default 623
	Username string
	Password string
}

// DialLAN opens an RMCP+ session with cipher suite 3 (HMAC-SHA1,
// HMAC-SHA1-96, AES-CBC-128) pinned: go-ipmi would otherwise ask the BMC
// for its channel's cipher suites, which ipmi_sim never answers, so every
// new session would wait out a full timeout. The one session is kept open
// (go-ipmi keeps it alive) and re-opened when it breaks.
func DialLAN(ctx context.Context, cfg LANConfig, opts Options) (*Client, error) {
	if cfg.Host == "" {
		return nil, fmt.Errorf("ipmi lan: no host")
	}
	if cfg.Port == 0 {
		cfg.Port = 623
	}
	opts = opts.withDefaults()
	l := &lanConn{cfg: cfg, timeout: opts.Timeout}
	c := newClient(l, opts)
	// The first session gets the same retries as any request.
	var err error
	for attempt := 0; attempt <= opts.Retries; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, 4*opts.Timeout)
		err = l.reconnect(rctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ipmi lan %s:%d: open session: %w", cfg.Host, cfg.Port, err)
	}
	return c, nil
}

type lanConn struct {
	cfg     LANConfig
	timeout time.Duration
	cl      *ipmiclient.Client
}

func (l *lanConn) transport() string { return "lan" }

func (l *lanConn) exchange(ctx context.Context, req types.Request, resp types.Response) error {
	if l.cl == nil {
		return fmt.Errorf("ipmi lan: no session")
	}
	return l.cl.Exchange(ctx, req, resp)
}

func (l *lanConn) reconnect(ctx context.Context) error {
	l.dropSession()
	cl, err := ipmiclient.NewClient(l.cfg.Host, l.cfg.Port, l.cfg.Username, l.cfg.Password)
	if err != nil {
		return err
	}
	// Retries are ours (with backoff and re-opening), not go-ipmi's.
	cl.WithTimeout(l.timeout).WithRetry(0).
		WithCipherSuiteID(types.CipherSuiteID3).
		WithMaxPrivilegeLevel(types.PrivilegeLevelAdministrator)
	if err := cl.Connect(ctx); err != nil {
		closeQuietly(cl, l.timeout)
		return err
	}
	l.cl = cl
	return nil
}

// dropSession closes the current session without waiting for a BMC that
// may be gone: Close Session is best effort, in the background.
func (l *lanConn) dropSession() {
	if l.cl == nil {
		return
	}
	go closeQuietly(l.cl, l.timeout)
	l.cl = nil
}

func closeQuietly(cl *ipmiclient.Client, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = cl.Close(ctx)
}

func (l *lanConn) close() error {
	if l.cl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	err := l.cl.Close(ctx)
	l.cl = nil
	return err
}
