package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/bmc/bmctest"
	"podos.dev/podos/boardd/snapshot"
)

// stubDial is the BMC of these unit tests (the real one is ipmi_sim in
// the other tests of this package).
var stubDial = bmctest.Dial

func TestPlugsMountsAndLiveness(t *testing.T) {
	started, stopped := make(chan struct{}), make(chan struct{})
	var seen *Daemon
	plug := func(d *Daemon) (Component, error) {
		seen = d
		d.Mount("/podos/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "board "+d.Store().Load().Board.ID)
		}))
		return ComponentFunc(func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			close(stopped)
			return nil
		}), nil
	}
	r := startDaemon(t, Options{BMCURL: "ipmi+lan://admin:pw@127.0.0.1:1", Dial: stubDial, Interval: 50 * time.Millisecond, Plugs: []Plug{plug}})
	if seen != r.d {
		t.Fatal("plug not given the daemon")
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("component not started")
	}
	waitSnap(t, r.d.Store(), 30*time.Second, "first poll", func(s *snapshot.Snapshot) bool { return s.BMC.Up })
	if !r.d.Healthy() || r.d.Collector().LastIteration().IsZero() {
		t.Errorf("Healthy %v, last iteration %v", r.d.Healthy(), r.d.Collector().LastIteration())
	}
	if code, body := httpGet(t, "http://"+r.d.MetricsAddr()+"/healthz"); code != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	// The mount is served over HTTPS behind Redfish authentication.
	c := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(auth bool) (int, string) {
		req, _ := http.NewRequest("GET", "https://"+r.d.Addr()+"/podos/v1/board", nil)
		if auth {
			req.SetBasicAuth("admin", "s3cret-pass")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(false); code != http.StatusUnauthorized {
		t.Errorf("mount without credentials: %d", code)
	}
	if code, body := get(true); code != 200 || body != "board board" {
		t.Errorf("mount: %d %q", code, body)
	}
	r.stop(t)
	select {
	case <-stopped:
	default:
		t.Error("component still running after the daemon stopped")
	}
}

func TestFailingComponentEndsDaemon(t *testing.T) {
	boom := errors.New("fabric watcher broke")
	plug := func(d *Daemon) (Component, error) {
		return ComponentFunc(func(ctx context.Context) error { return boom }), nil
	}
	d, err := New(Options{BMCURL: "ipmi+lan://admin:pw@127.0.0.1:1", Dial: stubDial, StateDir: t.TempDir(),
		Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", Plugs: []Plug{plug}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("Run = %v, want the component's error", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon kept running after a component failed")
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{BMCURL: "ipmi+lan://a:b@h"}, "state dir"},
		{Options{StateDir: t.TempDir()}, "BMC URL"},
		{Options{StateDir: t.TempDir(), BMCURL: "ipmi+lan://admin:hunter2@"}, "no host"},
		{Options{StateDir: t.TempDir(), BMCURL: "http://x"}, "not supported"},
		{Options{StateDir: t.TempDir(), BMCURL: "ipmi+lan://a:b@h", Plugs: []Plug{func(*Daemon) (Component, error) { return nil, errors.New("plug failed") }}}, "plug failed"},
	} {
		_, err := New(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%+v) = %v, want an error about %q (and no password)", tc.o, err, tc.want)
		}
	}
}
