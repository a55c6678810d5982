// Command capture boots the emulated board's PCIe hierarchy (from a board
// config's emulation.pcie) with fabric's guest agent in dump mode and
// writes the guest's sysfs PCI capture (a sysfsfix archive) to -o. It is
// how fabric/testdata/sys-emulated.txtar was made:
//
//	go run ./fabric/internal/qemuboard/cmd/capture -o fabric/testdata/sys-emulated.txtar
//	go run ./fabric/internal/qemuboard/cmd/capture -native -o fabric/testdata/sys-emulated-pciehp.txtar
//	go run ./fabric/internal/qemuboard/cmd/capture -sys /sys -o fabric/testdata/sys-host.txtar
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/fabric/internal/qemuboard"
	"podos.dev/podos/fabric/internal/sysfsfix"
)

func main() {
	cfgPath := flag.String("config", "board-configs/emulated-ruggedpod.yaml", "board config")
	out := flag.String("o", "sys-emulated.txtar", "output archive")
	native := flag.Bool("native", false, "native pciehp instead of ACPI hotplug")
	host := flag.String("sys", "", "capture this sysfs root (e.g. /sys) instead of booting the board")
	flag.Parse()
	if *host != "" {
		b, err := sysfsfix.Capture(*host)
		if err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			log.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(*cfgPath)
	if err != nil {
		log.Fatal(err)
	}
	var cfg boardconfig.Config
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		log.Fatal(err)
	}
	if cfg.Emulation == nil {
		log.Fatal("config has no emulation section")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "fabric-capture")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	initrd, err := qemuboard.BuildInitramfs(ctx, dir, nil)
	if err != nil {
		log.Fatal(err)
	}
	b, err := qemuboard.Start(ctx, qemuboard.Options{Dir: dir, Initramfs: initrd, Mode: "dump", PCIe: cfg.Emulation.PCIe, NativeHotplug: *native})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Kill()
	var buf strings.Builder
	in := false
	for {
		select {
		case line, ok := <-b.Lines():
			if !ok {
				log.Fatalf("console closed before the capture ended:\n%s", b.Console())
			}
			switch {
			case line == "=== BEGIN SYSFS ===":
				in = true
			case line == "=== END SYSFS ===":
				if err := os.WriteFile(*out, []byte(buf.String()), 0o644); err != nil {
					log.Fatal(err)
				}
				fmt.Println("wrote", *out)
				return
			case in:
				buf.WriteString(line + "\n")
			}
		case <-ctx.Done():
			log.Fatalf("timeout:\n%s", b.Console())
		}
	}
}
