// Command bench measures boardd against a real ipmi_sim over IPMI LAN
// and writes rows to out/bench/boardd.tsv (make bench-boardd):
//
//   - cost: the built bin/boardd polls ipmisim.Synthetic(64) (64 threshold
//     sensors) at 1 Hz for --duration; its CPU (utime+stime, as % of one
//     core) and memory (VmRSS, VmHWM) are read from /proc with
//     prometheus/procfs. With --workloads-boardd, the same for
//     bin/boardd-workloads (the binary boardd execs for --workloads, run
//     here without it: what linking the containerd client costs before any
//     workload runs). Baseline, in the same run and for the same time:
//     `ipmitool -I lanplus -C 3 ... sdr elist` started once per second,
//     the classic cron/script way to watch a BMC, CPU of every run summed.
//   - latency: a reading is changed at the BMC (ipmisim Set) across a
//     critical threshold and back, --samples times at random phases of the
//     poll; the time until /metrics shows the new value and until the
//     Redfish SSE event arrives is measured (median, p99).
//
// Columns: metric, podos value, baseline name, baseline value, ratio,
// target, verdict.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"podos.dev/podos/bmc/ipmisim"
)

func main() {
	var (
		bin      = flag.String("boardd", "bin/boardd", "boardd binary")
		wlBin    = flag.String("workloads-boardd", "", "boardd-workloads binary, measured too (without --workloads)")
		out      = flag.String("out", "out/bench/boardd.tsv", "TSV file to write")
		duration = flag.Duration("duration", 60*time.Second, "measurement window for CPU and memory")
		samples  = flag.Int("samples", 40, "latency samples")
		sensors  = flag.Int("sensors", 64, "synthetic sensors")
	)
	flag.Parse()
	if err := run(*bin, *wlBin, *out, *duration, *samples, *sensors); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type row struct {
	metric, podos, baseName, base, ratio, target, verdict string
}

type boarddProc struct {
	cmd              *exec.Cmd
	redfish, metrics string
}

// startBoardd runs a boardd binary against the sim with no board config,
// as a fresh install would, and waits until every sensor is read.
func startBoardd(ctx context.Context, hc *http.Client, bin, state, pwFile string, sim *ipmisim.Sim, nSensors int) (*boarddProc, error) {
	cmd := exec.CommandContext(ctx, bin, "--bmc", sim.URL(), "--state-dir", state,
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-format", "json",
		"--admin-password-file", pwFile, "--poll", "1s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &boarddProc{cmd: cmd}
	if p.redfish, p.metrics, err = serving(stderr); err != nil {
		p.stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: %s pid %d serving %s and %s; %d sensors on %s\n", bin, cmd.Process.Pid, p.redfish, p.metrics, nSensors, sim.LANAddr())
	if err := waitMetrics(ctx, hc, p.metrics, func(body string) bool {
		return strings.Count(body, "\nboardd_sensor_state{") == nSensors && strings.Contains(body, "boardd_bmc_up{transport=\"lan\"} 1")
	}, 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	time.Sleep(5 * time.Second) // settle
	return p, nil
}

func (p *boarddProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

type cost struct {
	cpuPct, cpuPerPoll float64
	hwm, rssMax        uint64 // bytes
}

// measure reads the process's CPU and memory over the window.
func measure(hc *http.Client, p *boarddProc, window time.Duration) (cost, error) {
	var c cost
	proc, err := procfs.NewProc(p.cmd.Process.Pid)
	if err != nil {
		return c, err
	}
	st0, err := proc.Stat()
	if err != nil {
		return c, err
	}
	t0 := time.Now()
	seq0, _ := snapshotSeq(hc, p.metrics)
	for time.Since(t0) < window {
		time.Sleep(time.Second)
		if s, err := proc.NewStatus(); err == nil && s.VmRSS > c.rssMax {
			c.rssMax = s.VmRSS
		}
	}
	st1, err := proc.Stat()
	if err != nil {
		return c, err
	}
	elapsed := time.Since(t0)
	seq1, _ := snapshotSeq(hc, p.metrics)
	status, err := proc.NewStatus()
	if err != nil {
		return c, err
	}
	cpu := st1.CPUTime() - st0.CPUTime()
	c.cpuPct = 100 * cpu / elapsed.Seconds()
	if polls := seq1 - seq0; polls > 0 {
		c.cpuPerPoll = 1000 * cpu / float64(polls)
	}
	c.hwm = status.VmHWM
	fmt.Fprintf(os.Stderr, "bench: %.3fs CPU in %s (%d polls): %.3f%%; VmRSS %d KiB (anon %d, file %d), VmHWM %d KiB\n",
		cpu, elapsed.Round(time.Millisecond), seq1-seq0, c.cpuPct, status.VmRSS/1024, status.RssAnon/1024, status.RssFile/1024, status.VmHWM/1024)
	return c, nil
}

func run(bin, wlBin, out string, window time.Duration, samples, nSensors int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*window+10*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "boardd-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cfg := ipmisim.Synthetic(nSensors)
	sim, err := ipmisim.Start(ctx, nil, cfg, ipmisim.Options{Dir: filepath.Join(dir, "bmc")})
	if err != nil {
		return err
	}
	defer sim.Stop()

	pwFile := filepath.Join(dir, "admin-pw")
	const pw = "bench-pass-1"
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	// --- cost of boardd (and of boardd-workloads) -------------------------------
	full, err := startBoardd(ctx, hc, bin, filepath.Join(dir, "state"), pwFile, sim, nSensors)
	if err != nil {
		return err
	}
	defer full.stop()
	c, err := measure(hc, full, window)
	if err != nil {
		return err
	}
	var wl *cost
	if wlBin != "" {
		full.stop() // one daemon at a time on the BMC
		wp, err := startBoardd(ctx, hc, wlBin, filepath.Join(dir, "state-workloads"), pwFile, sim, nSensors)
		if err != nil {
			return err
		}
		wc, err := measure(hc, wp, window)
		wp.stop()
		if err != nil {
			return err
		}
		wl = &wc
		if full, err = startBoardd(ctx, hc, bin, filepath.Join(dir, "state"), pwFile, sim, nSensors); err != nil {
			return err
		}
		defer full.stop()
	}

	// --- baseline: ipmitool sdr elist once a second ---------------------------
	ipmitool, err := exec.LookPath("ipmitool")
	if err != nil {
		return fmt.Errorf("baseline needs ipmitool: %w", err)
	}
	var baseCPU time.Duration
	var baseRSS int64
	runs := 0
	b0 := time.Now()
	for next := b0; time.Since(b0) < window; next = next.Add(time.Second) {
		time.Sleep(time.Until(next))
		cmd := exec.CommandContext(ctx, ipmitool, "-I", "lanplus", "-C", "3", "-H", "127.0.0.1",
			"-p", strconv.Itoa(sim.LANPort()), "-U", ipmisim.User, "-P", ipmisim.Password, "sdr", "elist")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("baseline ipmitool: %w", err)
		}
		runs++
		baseCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > baseRSS {
			baseRSS = ru.Maxrss // KiB
		}
	}
	bElapsed := time.Since(b0)
	basePct := 100 * baseCPU.Seconds() / bElapsed.Seconds()
	basePerRun := 1000 * baseCPU.Seconds() / float64(runs)
	fmt.Fprintf(os.Stderr, "bench: ipmitool sdr elist x%d: %.3fs CPU in %s: %.3f%%; max RSS %d KiB\n",
		runs, baseCPU.Seconds(), bElapsed.Round(time.Millisecond), basePct, baseRSS)

	// --- latency -----------------------------------------------------------------
	lat, err := latency(ctx, hc, sim, full.redfish, full.metrics, pw, samples)
	if err != nil {
		return err
	}

	load := -1.0
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if la, err := fs.LoadAvg(); err == nil {
			load = la.Load5
		}
	}
	mb := func(b uint64) float64 { return float64(b) / (1 << 20) }
	baseMB := float64(baseRSS) / 1024
	rows := []row{
		{"boardd_cpu_percent_64_sensors_1hz", f3(c.cpuPct), "ipmitool_sdr_elist_1hz_cpu_percent", f3(basePct), ratio(c.cpuPct, basePct), "<=1", verdict(c.cpuPct <= 1)},
		{"boardd_cpu_ms_per_poll", f3(c.cpuPerPoll), "ipmitool_sdr_elist_cpu_ms_per_run", f3(basePerRun), ratio(c.cpuPerPoll, basePerRun), "-", "info"},
		{"boardd_vmhwm_mb", f1(mb(c.hwm)), "ipmitool_sdr_elist_maxrss_mb", f1(baseMB), ratio(mb(c.hwm), baseMB), "<=20", verdict(mb(c.hwm) <= 20)},
	}
	if wl != nil {
		// The same targets: a board with workloads polls its sensors with
		// this binary (and runs containerd besides).
		rows = append(rows,
			row{"boardd_workloads_binary_cpu_percent_64_sensors_1hz", f3(wl.cpuPct), "ipmitool_sdr_elist_1hz_cpu_percent", f3(basePct), ratio(wl.cpuPct, basePct), "<=1", verdict(wl.cpuPct <= 1)},
			row{"boardd_workloads_binary_vmhwm_mb", f1(mb(wl.hwm)), "ipmitool_sdr_elist_maxrss_mb", f1(baseMB), ratio(mb(wl.hwm), baseMB), "<=20", verdict(mb(wl.hwm) <= 20)})
	}
	target := 1200.0 // poll interval + 200 ms
	for _, l := range lat {
		rows = append(rows,
			row{l.name + "_median_ms", f1(l.median), "poll_interval_ms", "1000", ratio(l.median, 1000), "<=1200", verdict(l.median <= target)},
			row{l.name + "_p99_ms", f1(l.p99), "poll_interval_ms", "1000", ratio(l.p99, 1000), "<=1200", verdict(l.p99 <= target)})
	}
	// Context for reading the figures: a busy host inflates CPU and latency.
	rows = append(rows, row{"host_loadavg_5m_during_bench", f1(load), "-", "-", "-", "-", "info"})
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.metric, r.podos, r.baseName, r.base, r.ratio, r.target, r.verdict)
	}
	fmt.Fprint(os.Stderr, b.String())
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 3, 64)
}
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// serving reads boardd's JSON log until it says where it serves.
func serving(r io.Reader) (redfish, metrics string, err error) {
	sc := bufio.NewScanner(r)
	found := make(chan [2]string, 1)
	go func() {
		sent := false
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			if lvl, _ := m["level"].(string); lvl == "WARN" || lvl == "ERROR" {
				fmt.Fprintf(os.Stderr, "boardd: %s\n", sc.Text())
			}
			if !sent && m["msg"] == "boardd serving" {
				rf, _ := m["redfish"].(string)
				mt, _ := m["metrics"].(string)
				found <- [2]string{rf, mt}
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case a, ok := <-found:
		if !ok {
			return "", "", errors.New("boardd exited before serving")
		}
		return a[0], a[1], nil
	case <-time.After(60 * time.Second):
		return "", "", errors.New("boardd did not start serving within 60s")
	}
}

func get(hc *http.Client, url string) (string, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func waitMetrics(ctx context.Context, hc *http.Client, url string, ok func(string) bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if body, err := get(hc, url); err == nil && ok(body) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("metrics at %s not as expected within %s", url, timeout)
}

var seqRe = regexp.MustCompile(`(?m)^boardd_snapshot_seq (\S+)$`)

func snapshotSeq(hc *http.Client, url string) (uint64, error) {
	body, err := get(hc, url)
	if err != nil {
		return 0, err
	}
	m := seqRe.FindStringSubmatch(body)
	if m == nil {
		return 0, errors.New("no boardd_snapshot_seq")
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return uint64(v), err
}

type latencyResult struct {
	name        string
	median, p99 float64 // ms
}

// latency changes SYN_000 across its critical threshold and back and
// times how long boardd takes to show it in /metrics and to deliver the
// Redfish SSE event.
func latency(ctx context.Context, hc *http.Client, sim *ipmisim.Sim, redfishURL, metricsURL, pw string, n int) ([]latencyResult, error) {
	// SYN_000: a voltage, 0.1 V/count, thresholds at raw 10/20/30 and
	// 100/110/120: raw 40 is OK (4.0 V), raw 115 Critical (11.5 V).
	const id = "20-0-01"
	// boardd runs with no config (board "board"), as a fresh install would.
	origin := "/redfish/v1/Chassis/board/Sensors/" + id
	sseCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(sseCtx, "GET", redfishURL+"/redfish/v1/EventService/SSE", nil)
	req.SetBasicAuth("admin", pw)
	sseClient := &http.Client{Transport: hc.Transport}
	resp, err := sseClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("SSE: %w", err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return nil, fmt.Errorf("SSE: %s", resp.Status)
	}
	defer resp.Body.Close()
	arrivals := make(chan time.Time, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"`+origin+`"`) && strings.Contains(line, "ResourceStatusChanged") {
				arrivals <- time.Now()
			}
		}
	}()
	series := regexp.MustCompile(`(?m)^boardd_voltage_volts\{id="` + id + `",name="SYN_000"\} (\S+)$`)
	var metricLat, eventLat, bothLat []float64
	raw := []int{115, 40}
	want := []string{"11.5", "4"}
	for i := 0; i < n; i++ {
		// A random phase relative to the 1 s poll.
		time.Sleep(time.Duration(700+rand.IntN(1000)) * time.Millisecond)
		for len(arrivals) > 0 {
			<-arrivals
		}
		k := i % 2
		t0 := time.Now()
		if err := sim.Set(ctx, "SYN_000", raw[k]); err != nil {
			return nil, err
		}
		var tm, te time.Time
		deadline := t0.Add(10 * time.Second)
		for (tm.IsZero() || te.IsZero()) && time.Now().Before(deadline) {
			if tm.IsZero() {
				if body, err := get(hc, metricsURL); err == nil {
					if m := series.FindStringSubmatch(body); m != nil && m[1] == want[k] {
						tm = time.Now()
					}
				}
			}
			if te.IsZero() {
				select {
				case te = <-arrivals:
				default:
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if tm.IsZero() || te.IsZero() {
			return nil, fmt.Errorf("latency sample %d: change not seen within 10s (metrics %v, event %v)", i, !tm.IsZero(), !te.IsZero())
		}
		ms := func(t time.Time) float64 { return float64(t.Sub(t0).Microseconds()) / 1000 }
		metricLat = append(metricLat, ms(tm))
		eventLat = append(eventLat, ms(te))
		bothLat = append(bothLat, max(ms(tm), ms(te)))
	}
	res := []latencyResult{
		summarize("latency_metrics", metricLat),
		summarize("latency_sse_event", eventLat),
		summarize("latency_metrics_and_event", bothLat),
	}
	for _, r := range res {
		fmt.Fprintf(os.Stderr, "bench: %s over %d samples: median %.1f ms, p99 %.1f ms\n", r.name, n, r.median, r.p99)
	}
	return res, nil
}

func summarize(name string, v []float64) latencyResult {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	q := func(p float64) float64 {
		i := int(p*float64(len(s)-1) + 0.5)
		return s[i]
	}
	return latencyResult{name: name, median: q(0.5), p99: q(0.99)}
}
