// Command bench measures boardd's Redfish service: GET of the Sensors
// collection of the emulated board, with Basic authentication, against a
// plain net/http handler writing the same bytes over the same TLS
// configuration. A Go load generator keeps 64 keep-alive connections busy
// for a fixed time against each and reports req/s and p99 latency as
// bench rows (metric, podos, baseline name, baseline, ratio, target,
// verdict).
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/redfish"
	"podos.dev/podos/boardd/redfish/redfishtest"
	"podos.dev/podos/boardd/snapshot"
	"podos.dev/podos/boardd/tlsutil"
)

func main() {
	cfgPath := flag.String("config", "board-configs/emulated-ruggedpod.yaml", "board config the snapshot is built from")
	out := flag.String("out", "out/bench/redfish.tsv", "TSV file the rows are appended to")
	dur := flag.Duration("duration", 10*time.Second, "measuring time per target")
	conns := flag.Int("conns", 64, "keep-alive connections")
	gen := flag.String("loadgen", "auto", "load generator: wrk (C, lighter on a 2-core box), go, or auto (wrk when installed)")
	flag.Parse()
	if *gen == "auto" {
		*gen = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			*gen = "wrk"
		}
	}
	if err := run(*cfgPath, *out, *dur, *conns, *gen); err != nil {
		log.Fatal(err)
	}
}

func run(cfgPath, out string, dur time.Duration, conns int, gen string) error {
	cfg, err := boardconfig.Load(cfgPath)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "redfish-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const user, pw = "admin", "bench-admin-password"
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		return err
	}
	a, err := auth.Open(filepath.Join(dir, "state"), pwFile, nil)
	if err != nil {
		return err
	}
	store := snapshot.NewStore()
	store.Swap(redfishtest.Snapshot(cfg, 1, time.Now(), nil))
	svc, err := redfish.New(redfish.Options{Store: store, Bus: events.NewBus(), Config: cfg, Auth: a})
	if err != nil {
		return err
	}
	defer svc.Close()
	tc, err := tlsutil.Load(dir, "", "")
	if err != nil {
		return err
	}
	path := "/redfish/v1/Chassis/" + cfg.Board.ID + "/Sensors"

	svcURL, stop1, err := serve(tc, svc.Handler())
	if err != nil {
		return err
	}
	defer stop1()
	client := newClient(conns)
	body, err := fetch(client, svcURL+path, user, pw)
	if err != nil {
		return err
	}
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body)
	})
	plainURL, stop2, err := serve(tc, plain)
	if err != nil {
		return err
	}
	defer stop2()

	// Alternate short rounds of each target so that a change in the
	// machine's load (other jobs on a shared CI box) hits both alike.
	const rounds = 5
	var pr, sr result
	loadFn := load
	if gen == "wrk" {
		loadFn = loadWrk
	}
	for range rounds {
		p := loadFn(plainURL+path, user, pw, conns, dur/rounds, len(body))
		q := loadFn(svcURL+path, user, pw, conns, dur/rounds, len(body))
		if p.err != nil || q.err != nil {
			return errors.Join(p.err, q.err)
		}
		pr.add(p)
		sr.add(q)
	}
	pr.finish()
	sr.finish()
	ratio := sr.rps / pr.rps
	p99 := float64(sr.p99) / float64(time.Millisecond)
	pp99 := float64(pr.p99) / float64(time.Millisecond)
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	rows := fmt.Sprintf("redfish Sensors GET req/s (%d conns, TLS, Basic, "+gen+")\t%.0f\tplain net/http, same bytes and TLS\t%.0f\t%.2f\t>=0.6\t%s\n",
		conns, sr.rps, pr.rps, ratio, verdict(ratio >= 0.6))
	rows += fmt.Sprintf("redfish Sensors GET p99 ms (%d conns)\t%.2f\tplain net/http p99 ms\t%.2f\t%.2f\t<=10ms\t%s\n",
		conns, p99, pp99, p99/pp99, verdict(p99 <= 10))
	fmt.Print(rows)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(rows)
	return err
}

func serve(tc *tls.Config, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	// Load generators close connections mid-handshake at the end of a run:
	// keep those errors out of the table's output.
	srv := &http.Server{Handler: h, TLSConfig: tc.Clone(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	return "https://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func newClient(conns int) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}, //nolint:gosec // our own self-signed test certificate
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func fetch(c *http.Client, url, user, pw string) ([]byte, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(user, pw)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return b, nil
}

type result struct {
	rps  float64
	p99  time.Duration
	err  error
	n    int64
	secs float64
	lats []time.Duration
	p99s []time.Duration // per round, when the generator reports only percentiles (wrk)
}

func (r *result) add(o result) {
	r.n += o.n
	r.secs += o.secs
	r.lats = append(r.lats, o.lats...)
	if o.p99 > 0 && len(o.lats) == 0 {
		r.p99s = append(r.p99s, o.p99)
	}
}

func (r *result) finish() {
	r.rps = float64(r.n) / r.secs
	if len(r.lats) == 0 { // wrk: the worst round's p99, to stay conservative
		r.p99 = slices.Max(r.p99s)
		return
	}
	slices.Sort(r.lats)
	r.p99 = r.lats[len(r.lats)*99/100]
}

// loadWrk drives url with wrk (two threads, conns connections, dur) and
// reads its request rate and 99th percentile latency. wrk, in C, leaves
// the server more of a 2-core machine than a Go load generator does.
func loadWrk(url, user, pw string, conns int, dur time.Duration, _ int) result {
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	secs := max(1, int(dur.Round(time.Second)/time.Second))
	out, err := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(secs)+"s", "--latency", "-H", auth, url).CombinedOutput()
	if err != nil {
		return result{err: fmt.Errorf("wrk: %w: %s", err, out)}
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return result{err: err}
	}
	r.secs = float64(secs)
	r.n = int64(r.rps * r.secs)
	return r
}

// parseWrk reads "Requests/sec:" and the "99%" line of wrk --latency.
func parseWrk(out string) (result, error) {
	var r result
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.rps = v
		case len(f) == 2 && f[0] == "99%":
			d, err := time.ParseDuration(strings.Replace(f[1], "us", "µs", 1))
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", line, err)
			}
			r.p99 = d
		case len(f) >= 2 && f[0] == "Non-2xx":
			return r, fmt.Errorf("wrk: %s", line)
		}
	}
	if r.rps == 0 || r.p99 == 0 {
		return r, fmt.Errorf("wrk: no rate or p99 in %q", out)
	}
	return r, nil
}

// load runs conns workers, each on its own keep-alive connection, for a
// warm-up second and then dur, and reports the measured part.
func load(url, user, pw string, conns int, dur time.Duration, size int) result {
	client := newClient(conns)
	defer client.CloseIdleConnections()
	var measuring atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	lat := make([][]time.Duration, conns)
	errs := make([]error, conns)
	var count atomic.Int64
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.SetBasicAuth(user, pw)
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs[i] = err
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || int(n) != size {
					errs[i] = fmt.Errorf("GET %s: %s, %d bytes", url, resp.Status, n)
					return
				}
				if measuring.Load() {
					lat[i] = append(lat[i], time.Since(t0))
					count.Add(1)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return result{err: err}
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return result{err: errors.New("no requests completed")}
	}
	return result{n: count.Load(), secs: elapsed.Seconds(), lats: all}
}
