// Command bootbench measures the board's boot against a bare u-root boot
// of the same kernel, in the same run, and writes `make bench` rows:
//
//	boot-to-ready-s      QEMU start to boardd's first Redfish 200, vs the
//	                     bare u-root initramfs reaching its init
//	image-size-mb        compressed initramfs, vs the bare u-root image
//	initramfs-unpack-s   kernel log: "Trying to unpack rootfs" to
//	                     "Freeing initrd memory", vs the bare image
//
// Each is the median of -runs boots (TCG).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"podos.dev/podos/qemu-tests/board"
)

func main() {
	var (
		boardName, out, bare, tsv string
		runs                      int
	)
	flag.StringVar(&boardName, "board", "emulated-ruggedpod", "board name")
	flag.StringVar(&out, "out", "out", "build output directory")
	flag.StringVar(&bare, "bare", "out/bare-uroot", "bare u-root image directory")
	flag.StringVar(&tsv, "tsv", "out/bench/boot.tsv", "rows output")
	flag.IntVar(&runs, "runs", 3, "boots of each kind")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, boardName, out, bare, tsv, runs); err != nil {
		fmt.Fprintln(os.Stderr, "bootbench:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, boardName, out, bareDir, tsv string, runs int) error {
	ctx := context.Background()
	imageDir := filepath.Join(out, boardName)
	var podReady, podUnpack, bareReady, bareUnpack []float64
	for i := 0; i < runs; i++ {
		r, u, err := bootBare(ctx, bareDir)
		if err != nil {
			return fmt.Errorf("bare boot %d: %w", i+1, err)
		}
		bareReady, bareUnpack = append(bareReady, r), append(bareUnpack, u)
		log.Info("bare u-root boot", "run", i+1, "init_s", r, "unpack_s", u)
		r, u, err = bootPodos(ctx, log, boardName, imageDir)
		if err != nil {
			return fmt.Errorf("podos boot %d: %w", i+1, err)
		}
		podReady, podUnpack = append(podReady, r), append(podUnpack, u)
		log.Info("podos boot", "run", i+1, "ready_s", r, "unpack_s", u)
	}
	podSize, err := imageMB(imageDir)
	if err != nil {
		return err
	}
	bareSize, err := imageMB(bareDir)
	if err != nil {
		return err
	}
	rows := []string{
		row("boot-to-ready-s", median(podReady), "bare-uroot-init", median(bareReady), "ratio<=1.15", median(podReady)/median(bareReady) <= 1.15),
		row("image-size-mb", podSize, "bare-uroot-image", bareSize, "<=20MB", podSize <= 20),
		row("initramfs-unpack-s", median(podUnpack), "bare-uroot-unpack", median(bareUnpack), "<=1s", median(podUnpack) <= 1),
	}
	if err := os.MkdirAll(filepath.Dir(tsv), 0o755); err != nil {
		return err
	}
	return os.WriteFile(tsv, []byte(strings.Join(rows, "")), 0o644)
}

func row(metric string, v float64, base string, bv float64, target string, pass bool) string {
	verdict := "FAIL"
	if pass {
		verdict = "PASS"
	}
	ratio := 0.0
	if bv != 0 {
		ratio = v / bv
	}
	return fmt.Sprintf("%s\t%.2f\t%s\t%.2f\t%.2f\t%s\t%s\n", metric, v, base, bv, ratio, target, verdict)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func imageMB(dir string) (float64, error) {
	m, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return 0, fmt.Errorf("%w (make image image-bare)", err)
	}
	var man struct {
		ImageBytes int64 `json:"image_bytes"`
	}
	if err := json.Unmarshal(m, &man); err != nil {
		return 0, err
	}
	return float64(man.ImageBytes) / 1e6, nil
}

var (
	unpackRE = regexp.MustCompile(`\[\s*([0-9.]+)\] Trying to unpack rootfs`)
	freedRE  = regexp.MustCompile(`\[\s*([0-9.]+)\] Freeing initrd memory`)
)

// unpackTime reads the initramfs unpack duration from a kernel log.
func unpackTime(klog string) (float64, error) {
	a, b := unpackRE.FindStringSubmatch(klog), freedRE.FindStringSubmatch(klog)
	if a == nil || b == nil {
		return 0, errors.New("no initramfs unpack lines in the kernel log")
	}
	x, _ := strconv.ParseFloat(a[1], 64)
	y, _ := strconv.ParseFloat(b[1], 64)
	return y - x, nil
}

// bootBare boots the bare image (its uinit prints the kernel log) and
// returns the time to init and the unpack time.
func bootBare(ctx context.Context, dir string) (float64, float64, error) {
	m, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return 0, 0, err
	}
	var man struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(m, &man); err != nil {
		return 0, 0, err
	}
	tmp, err := os.MkdirTemp("", "bootbench-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	serial := filepath.Join(tmp, "serial.log")
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "2", "-cpu", "max",
		"-display", "none", "-vga", "none", "-monitor", "none", "-no-reboot",
		"-kernel", filepath.Join(dir, "vmlinuz"), "-initrd", filepath.Join(dir, man.Image),
		"-append", "console=ttyS0 quiet panic=-1", "-serial", "file:"+serial)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var ready float64
	for {
		data, _ := os.ReadFile(serial)
		if ready == 0 && bytes.Contains(data, []byte("Welcome to u-root")) {
			ready = time.Since(start).Seconds()
		}
		if ready != 0 && freedRE.Match(data) {
			u, err := unpackTime(string(data))
			return ready, u, err
		}
		select {
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("bare boot: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// bootPodos boots the board and returns QEMU start to first Redfish 200,
// and the unpack time from the board's kernel log (dmesg on the serial
// shell).
func bootPodos(ctx context.Context, log *slog.Logger, boardName, imageDir string) (float64, float64, error) {
	tmp, err := os.MkdirTemp("", "bootbench-board-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	b, err := board.Start(ctx, board.Options{
		ConfigPath: filepath.Join("board-configs", boardName+".yaml"),
		ImageDir:   imageDir, Dir: tmp, NoPowerOn: true, Logger: log,
	})
	if err != nil {
		return 0, 0, err
	}
	defer b.Stop()
	start := time.Now()
	if _, err := b.Power(ctx, "on"); err != nil {
		return 0, 0, err
	}
	if _, err := b.WaitRedfish(ctx, "/redfish/v1/", nil); err != nil {
		return 0, 0, err
	}
	ready := time.Since(start).Seconds()
	klog, err := b.SerialRun(ctx, "dmesg | grep 'unpack rootfs|Freeing initrd'")
	if err != nil {
		return 0, 0, err
	}
	u, err := unpackTime(klog)
	return ready, u, err
}
