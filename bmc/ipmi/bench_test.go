package ipmi_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"podos.dev/podos/bmc/ipmi"
	"podos.dev/podos/bmc/ipmisim"
	"podos.dev/podos/internal/testtool"
)

// BenchmarkLANRead64 measures one poll (Read of every sensor) of a
// 64-sensor board over IPMI LAN: `go test -bench LANRead64 ./bmc/ipmi`.
func BenchmarkLANRead64(b *testing.B) {
	_, c, ctx := startBench(b, 64)
	defs, err := c.Sensors(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Read(ctx, defs); err != nil {
			b.Fatal(err)
		}
	}
}

func startBench(tb testing.TB, n int) (*ipmisim.Sim, *ipmi.Client, context.Context) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	tb.Cleanup(cancel)
	sim, err := ipmisim.Start(ctx, tb, ipmisim.Synthetic(n), ipmisim.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ipmi.DialLAN(ctx, ipmi.LANConfig{Host: "127.0.0.1", Port: sim.LANPort(), Username: ipmisim.User, Password: ipmisim.Password}, ipmi.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return sim, c, ctx
}

// TestBenchRows writes `make bench` rows to $PODOS_BENCH_TSV (skipped
// without it): the median time to poll, and to discover, 64 sensors over
// IPMI LAN, against ipmitool doing the same from the command line.
//
//	metric  podos  baseline-name  baseline  ratio  target  verdict
func TestBenchRows(t *testing.T) {
	out := os.Getenv("PODOS_BENCH_TSV")
	if out == "" {
		t.Skip("PODOS_BENCH_TSV not set: run through make bench")
	}
	testtool.Require(t, "ipmitool")
	const n, rounds = 64, 20
	sim, c, ctx := startBench(t, n)
	median := func(f func() error, k int) time.Duration {
		var ds []time.Duration
		for range k {
			start := time.Now()
			if err := f(); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	discover := median(func() error { _, err := c.Sensors(ctx); return err }, 5)
	defs, err := c.Sensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	poll := median(func() error {
		rs, err := c.Read(ctx, defs)
		if err == nil && len(rs) != n {
			err = fmt.Errorf("%d readings", len(rs))
		}
		return err
	}, rounds)
	ipmitool := func(args ...string) func() error {
		base := []string{"-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", strconv.Itoa(sim.LANPort()), "-U", ipmisim.User, "-P", ipmisim.Password}
		return func() error {
			b, err := exec.CommandContext(ctx, "ipmitool", append(base, args...)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("ipmitool %v: %v: %s", args, err, b)
			}
			return nil
		}
	}
	// ipmitool has no "read these sensors" without walking the SDR:
	// `sdr elist` (SDR walk + every reading) is what a script would poll.
	base := median(ipmitool("sdr", "elist", "full"), 5)

	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	ratio := func(a, b time.Duration) string { return strconv.FormatFloat(float64(a)/float64(b), 'f', 2, 64) }
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	rows := fmt.Sprintf("bmc-ipmi-lan-poll-%d-sensors-ms\t%s\tipmitool-sdr-elist\t%s\t%s\t<1000\t%s\n",
		n, ms(poll), ms(base), ratio(poll, base), verdict(poll < time.Second))
	rows += fmt.Sprintf("bmc-ipmi-lan-discover-%d-sensors-ms\t%s\tipmitool-sdr-elist\t%s\t%s\t<5000\t%s\n",
		n, ms(discover), ms(base), ratio(discover, base), verdict(discover < 5*time.Second))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rows)
}
