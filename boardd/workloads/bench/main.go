// Command bench measures the workloads part of boardd on a real
// containerd (started here, as root) and writes rows to a TSV file:
//
//   - apply-to-running through the Manager against a bare containerd
//     client create+start of the same image, in the same run (median of
//     several runs; target ratio <= 1.2);
//   - a health fault published on the bus to the sheddable workload
//     frozen (median; target <= 1 s).
//
// Usage: bench -bin out/bin -image /abs/out/images/demo.tar -o out/bench/workloads.tsv
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/ctrd"
)

func main() {
	bin := flag.String("bin", "out/bin", "dir with containerd, containerd-shim-runc-v2, runc")
	image := flag.String("image", "", "demo OCI archive (absolute path)")
	out := flag.String("o", "out/bench/workloads.tsv", "TSV output")
	runs := flag.Int("runs", 7, "runs per measure")
	flag.Parse()
	if err := run(*bin, *image, *out, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench-workloads:", err)
		os.Exit(1)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func run(bin, image, out string, runs int) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (containerd)")
	}
	if !filepath.IsAbs(image) {
		return fmt.Errorf("-image %q must be absolute", image)
	}
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("/tmp", "pdb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	d, err := ctrd.NewDaemon(ctrd.DaemonConfig{BinDir: absBin, Dir: filepath.Join(dir, "c"), Output: logf, Logger: quiet})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		unmountUnder(dir)
	}()
	rctx, rcancel := context.WithTimeout(ctx, time.Minute)
	defer rcancel()
	if err := d.Ready(rctx); err != nil {
		return err
	}
	rt, err := ctrd.NewRuntime(ctrd.RuntimeConfig{Address: d.Address(), RuncPath: d.RuncPath(), FIFODir: filepath.Join(dir, "fifo"), Logger: quiet})
	if err != nil {
		return err
	}
	defer rt.Close()
	defer func() {
		cctx, c := context.WithTimeout(context.Background(), time.Minute)
		defer c()
		ids, _ := rt.List(cctx)
		for _, id := range ids {
			rt.Remove(cctx, id)
		}
	}()
	ref := workloads.ArchivePrefix + image
	name, err := rt.EnsureImage(ctx, ref) // import and unpack once, outside the timings
	if err != nil {
		return err
	}
	snap, err := rt.Snapshotter(ctx)
	if err != nil {
		return err
	}

	m, err := workloads.New(workloads.Options{Runtime: rt, StateDir: filepath.Join(dir, "state"), Logger: quiet, StopGrace: time.Second})
	if err != nil {
		return err
	}
	mctx, mcancel := context.WithCancel(ctx)
	mdone := make(chan struct{})
	go func() { defer close(mdone); m.Run(mctx) }()
	defer func() { mcancel(); <-mdone }()

	// 1. apply-to-running, interleaved with the bare client, one warm-up each.
	var viaManager, bare []time.Duration
	for i := -1; i < runs; i++ {
		id := fmt.Sprintf("bench-m%d", i+1)
		t0 := time.Now()
		if _, _, err := m.Apply(ctx, workloads.Spec{Name: id, Image: ref}); err != nil {
			return err
		}
		if err := waitState(ctx, m, id, workloads.StateRunning); err != nil {
			return err
		}
		dm := time.Since(t0)
		if err := m.Delete(ctx, id); err != nil {
			return err
		}
		db, err := bareStart(ctx, rt.Client(), name, snap, d.RuncPath(), fmt.Sprintf("bench-b%d", i+1))
		if err != nil {
			return err
		}
		if i >= 0 {
			viaManager, bare = append(viaManager, dm), append(bare, db)
		}
	}

	// 2. fault to frozen.
	bus := events.NewBus()
	if _, _, err := m.Apply(ctx, workloads.Spec{Name: "shed", Image: ref, Priority: "sheddable"}); err != nil {
		return err
	}
	if err := waitState(ctx, m, "shed", workloads.StateRunning); err != nil {
		return err
	}
	p := workloads.NewProtector(workloads.ProtectorConfig{Manager: m, Bus: bus, Logger: quiet,
		Policy: boardconfig.Policy{Hold: boardconfig.Duration{Duration: 50 * time.Millisecond}, Rules: []boardconfig.Rule{
			{Name: "power-critical", When: boardconfig.When{Subsystem: "Power", State: "Critical"}, Action: "shed"}}}})
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() { defer close(pdone); p.Run(pctx) }()
	defer func() { pcancel(); <-pdone }()
	var freeze []time.Duration
	for i := 0; i < runs; i++ {
		t0 := time.Now()
		bus.Publish(workloads.SubsystemEvent(health.Power, health.OK, health.Critical))
		if err := waitState(ctx, m, "shed", workloads.StatePaused); err != nil {
			return err
		}
		freeze = append(freeze, time.Since(t0))
		bus.Publish(workloads.SubsystemEvent(health.Power, health.Critical, health.OK))
		if err := waitState(ctx, m, "shed", workloads.StateRunning); err != nil {
			return err
		}
	}

	mm, bm, fm := median(viaManager), median(bare), median(freeze)
	ratio := float64(mm) / float64(bm)
	rows := []string{
		row(fmt.Sprintf("workloads apply-to-running ms (median of %d)", runs), ms(mm), "bare containerd create+start", ms(bm), ratio, "<=1.2", ratio <= 1.2),
		row(fmt.Sprintf("workloads fault-to-frozen ms (median of %d)", runs), ms(fm), "target", "1000", float64(fm)/float64(time.Second), "<=1000ms", fm <= time.Second),
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(strings.Join(rows, "")), 0o644); err != nil {
		return err
	}
	fmt.Print(strings.Join(rows, ""))
	return nil
}

func row(metric, v, base, bv string, ratio float64, target string, ok bool) string {
	verdict := "FAIL"
	if ok {
		verdict = "PASS"
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", metric, v, base, bv, ratio, target, verdict)
}

func waitState(ctx context.Context, m *workloads.Manager, name, state string) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if i, err := m.Get(name); err == nil && i.State == state {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return fmt.Errorf("%s not %s within a minute", name, state)
}

// bareStart is the baseline: what a plain containerd client does to run
// the image (same runtime options and output capture), timed from the
// create call to the started task; then it cleans up (untimed).
func bareStart(ctx context.Context, c *containerd.Client, image, snap, runc, id string) (time.Duration, error) {
	t0 := time.Now()
	img, err := c.GetImage(ctx, image)
	if err != nil {
		return 0, err
	}
	ctr, err := c.NewContainer(ctx, id,
		containerd.WithImage(img), containerd.WithSnapshotter(snap), containerd.WithNewSnapshot(id+"-snap", img),
		containerd.WithRuntime("io.containerd.runc.v2", &options.Options{BinaryName: runc}),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithHostNamespace(specs.NetworkNamespace)))
	if err != nil {
		return 0, err
	}
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, io.Discard, io.Discard)))
	if err != nil {
		return 0, err
	}
	if err := task.Start(ctx); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil {
		return 0, err
	}
	return d, ctr.Delete(ctx, containerd.WithSnapshotCleanup)
}

func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			exec.Command("umount", "-l", f[4]).Run()
		}
	}
}
