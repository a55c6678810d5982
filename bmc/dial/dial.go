// Package dial opens a bmc.Client from a URL. It lives apart from bmc so
// that bmc need not import its transports.
//
// URLs:
//
//	ipmi+lan://USER:PASS@HOST[:PORT]      IPMI LAN (RMCP+, cipher suite 3); port 623 by default
//	ipmi+kcs:///dev/ipmi0                 in-band IPMI through the Linux driver
//	redfish+https://USER:PASS@HOST[:PORT] Redfish; port 443 by default
//
// Redfish accepts any TLS certificate by default, because BMCs ship
// self-signed ones: add "?verify=true" (or set Options.VerifyTLS) to
// check the certificate against the system's roots. User and password
// are percent-encoded like any URL userinfo.
package dial

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmi"
	"podos.dev/podos/bmc/redfishbmc"
)

// Options apply to every transport. Zero values take each transport's
// defaults (IPMI: 1s timeout, 3 retries; Redfish: 5s, 3).
type Options struct {
	Timeout time.Duration
	Retries int
	// VerifyTLS checks a Redfish service's certificate (default: any
	// certificate is accepted).
	VerifyTLS bool
	Logger    *slog.Logger
}

// Scheme names the transports.
const (
	SchemeLAN     = "ipmi+lan"
	SchemeKCS     = "ipmi+kcs"
	SchemeRedfish = "redfish+https"
)

// Target is a parsed BMC URL.
type Target struct {
	Scheme   string
	Host     string // LAN, Redfish
	Port     int    // LAN, Redfish
	Username string
	Password string
	Device   string // KCS
	Verify   bool   // Redfish: ?verify=true
}

// String renders the target without its password.
func (t Target) String() string {
	switch t.Scheme {
	case SchemeKCS:
		return t.Scheme + "://" + t.Device
	default:
		u := url.URL{Scheme: t.Scheme, Host: net.JoinHostPort(t.Host, strconv.Itoa(t.Port))}
		if t.Username != "" {
			u.User = url.User(t.Username)
		}
		return u.String()
	}
}

// Parse parses and checks a BMC URL. Its errors name what is wrong in
// one line and never echo the password.
func Parse(raw string) (Target, error) {
	var t Target
	if strings.TrimSpace(raw) == "" {
		return t, fmt.Errorf("bmc url is empty (want ipmi+lan://, ipmi+kcs:// or redfish+https://)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url's errors quote the whole URL, password included.
		return t, fmt.Errorf("bmc url is malformed (%s)", redactErr(err))
	}
	t.Scheme = strings.ToLower(u.Scheme)
	switch t.Scheme {
	case SchemeKCS:
		if u.Host != "" {
			return t, fmt.Errorf("bmc url %s: a device path needs three slashes, as in ipmi+kcs:///dev/ipmi0", t.Scheme)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return t, fmt.Errorf("bmc url %s: takes only a device path, no credentials or query", t.Scheme)
		}
		if _, err := ipmi.KCSDeviceNumber(u.Path); err != nil {
			return t, fmt.Errorf("bmc url %s: device %q is not /dev/ipmiN", t.Scheme, u.Path)
		}
		t.Device = u.Path
		return t, nil
	case SchemeLAN, SchemeRedfish:
	case "":
		return t, fmt.Errorf("bmc url has no scheme (want ipmi+lan://, ipmi+kcs:// or redfish+https://)")
	default:
		return t, fmt.Errorf("bmc url scheme %q is not supported (want ipmi+lan, ipmi+kcs or redfish+https)", u.Scheme)
	}
	if u.Opaque != "" {
		return t, fmt.Errorf("bmc url %s: needs //, as in %s://user:pass@host", t.Scheme, t.Scheme)
	}
	t.Host = u.Hostname()
	if t.Host == "" {
		return t, fmt.Errorf("bmc url %s: no host", t.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return t, fmt.Errorf("bmc url %s: unexpected path %q", t.Scheme, u.Path)
	}
	if u.Fragment != "" {
		return t, fmt.Errorf("bmc url %s: unexpected fragment", t.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return t, fmt.Errorf("bmc url %s: no user name (want %s://user:pass@host)", t.Scheme, t.Scheme)
	}
	t.Username = u.User.Username()
	t.Password, _ = u.User.Password()
	if t.Scheme == SchemeLAN && len(t.Username) > 16 {
		return t, fmt.Errorf("bmc url %s: user name longer than 16 characters (IPMI limit)", t.Scheme)
	}
	if t.Scheme == SchemeLAN && len(t.Password) > 20 {
		return t, fmt.Errorf("bmc url %s: password longer than 20 characters (IPMI 2.0 limit)", t.Scheme)
	}
	t.Port = 623
	if t.Scheme == SchemeRedfish {
		t.Port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return t, fmt.Errorf("bmc url %s: port %q is not 1-65535", t.Scheme, p)
		}
		t.Port = n
	}
	q := u.Query()
	for k := range q {
		if t.Scheme != SchemeRedfish || k != "verify" {
			return t, fmt.Errorf("bmc url %s: unknown parameter %q", t.Scheme, k)
		}
	}
	if v := q.Get("verify"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return t, fmt.Errorf("bmc url %s: verify=%q is not true or false", t.Scheme, v)
		}
		t.Verify = b
	}
	return t, nil
}

func redactErr(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return "unparseable"
}

// Open parses rawURL and connects to the BMC.
func Open(ctx context.Context, rawURL string, opts Options) (bmc.Client, error) {
	t, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	io := ipmi.Options{Timeout: opts.Timeout, Retries: opts.Retries, Logger: opts.Logger}
	var c bmc.Client
	switch t.Scheme {
	case SchemeLAN:
		c, err = nonNil(ipmi.DialLAN(ctx, ipmi.LANConfig{Host: t.Host, Port: t.Port, Username: t.Username, Password: t.Password}, io))
	case SchemeKCS:
		c, err = nonNil(ipmi.OpenKCS(ctx, t.Device, io))
	default:
		c, err = nonNil(redfishbmc.Dial(ctx, redfishbmc.Config{
			Endpoint: "https://" + net.JoinHostPort(t.Host, strconv.Itoa(t.Port)),
			Username: t.Username, Password: t.Password,
		}, redfishbmc.Options{Timeout: opts.Timeout, Retries: opts.Retries, Logger: opts.Logger,
			InsecureTLS: !(t.Verify || opts.VerifyTLS)}))
	}
	if err != nil {
		return nil, fmt.Errorf("bmc %s: %w", t, err)
	}
	return c, nil
}

// nonNil keeps a failed constructor's nil pointer out of the interface.
func nonNil[C bmc.Client](c C, err error) (bmc.Client, error) {
	if err != nil {
		return nil, err
	}
	return c, nil
}
