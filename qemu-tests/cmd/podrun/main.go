// Command podrun starts the emulated board (BMC + QEMU) from the board's
// image, waits until boardd answers Redfish, prints one line
//
//	podos ready: redfish=https://127.0.0.1:8443 metrics=http://127.0.0.1:9102 bmc=127.0.0.1:9623 password-file=<path> [workloads=N]
//
// (workloads=N once the board config's N workloads all run).
// and runs until SIGINT/SIGTERM, when it stops everything it started.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"podos.dev/podos/qemu-tests/board"
)

func main() {
	var o board.Options
	var boardName, out string
	var timeout time.Duration
	flag.StringVar(&boardName, "board", "emulated-ruggedpod", "board name")
	flag.StringVar(&out, "out", "out", "build output directory")
	flag.StringVar(&o.Dir, "dir", "", "run directory (default out/run/<board>)")
	flag.IntVar(&o.RedfishPort, "redfish-port", 8443, "host port for Redfish (0: any free)")
	flag.IntVar(&o.MetricsPort, "metrics-port", 9102, "host port for metrics (0: any free)")
	flag.IntVar(&o.BMCPort, "bmc-port", 9623, "host UDP port for the BMC's IPMI LAN (0: any free)")
	flag.DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for boardd and its workloads")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o.Logger = log
	o.ConfigPath = filepath.Join("board-configs", boardName+".yaml")
	o.ImageDir = filepath.Join(out, boardName)
	if o.Dir == "" {
		o.Dir = filepath.Join(out, "run", boardName)
	}
	if err := run(o, timeout, log); err != nil {
		fmt.Fprintln(os.Stderr, "podrun:", err)
		os.Exit(1)
	}
}

func run(o board.Options, timeout time.Duration, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := board.Start(ctx, o)
	if err != nil {
		return err
	}
	defer b.Stop()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := b.WaitRedfish(wctx, "/redfish/v1/", nil); err != nil {
		return fmt.Errorf("boardd did not answer (serial console: %s): %w", b.SerialLog(), err)
	}
	workloads := ""
	if n := len(b.Config().Workloads); n > 0 {
		// The board is ready when its workloads run too.
		if err := b.WaitWorkloadsRunning(wctx); err != nil {
			return fmt.Errorf("%w (serial console: %s)", err, b.SerialLog())
		}
		workloads = fmt.Sprintf(" workloads=%d", n)
	}
	fmt.Printf("podos ready: redfish=%s metrics=%s bmc=%s password-file=%s%s\n", b.RedfishURL(), b.MetricsURL(), b.BMCAddr(), b.PasswordFile(), workloads)
	<-ctx.Done()
	log.Info("stopping the board")
	return nil
}
