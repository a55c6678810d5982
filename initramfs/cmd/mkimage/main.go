// Command mkimage builds a board's podos image into out/<board>/: the
// compressed initramfs, the kernel it was built for and manifest.json.
//
//	mkimage -board emulated-ruggedpod [-compression auto] [-out out/emulated-ruggedpod]
//
// SOURCE_DATE_EPOCH sets every mtime (the same inputs give the same bytes).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"podos.dev/podos/initramfs/imagebuild"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var (
		o     imagebuild.Options
		files list
		extra string
		flags string
	)
	flag.StringVar(&o.Board, "board", "emulated-ruggedpod", "board name")
	flag.StringVar(&o.ConfigPath, "config", "", "board config (default board-configs/<board>.yaml)")
	flag.StringVar(&o.RepoDir, "repo", ".", "podos module root")
	flag.StringVar(&o.KernelPath, "kernel", "", "kernel image (default: the newest /boot/vmlinuz-*-amd64)")
	flag.StringVar(&o.OutDir, "out", "", "output directory (default out/<board>)")
	flag.StringVar(&o.CacheDir, "cache", "", "cache directory (default out/cache)")
	flag.StringVar(&o.Compression, "compression", "auto", "auto (fastest boot within 20 MB), lz4, zstd, xz, gzip or none")
	flag.StringVar(&extra, "extra-modules", "", "comma-separated modules loaded after the config's boot.modules")
	flag.Var(&files, "file", "extra file archive/path=host/path (repeatable)")
	flag.StringVar(&o.WorkloadsBin, "workloads-bin", "", "directory holding containerd, containerd-shim-runc-v2 and runc (for a board with workloads)")
	flag.StringVar(&o.ImagesDir, "images", "", "directory holding the workloads' oci-archive images by file name")
	flag.StringVar(&flags, "boardd-flags", "", "space-separated boardd command line replacing podinit's default")
	flag.BoolVar(&o.Bare, "bare", false, "build the bare u-root baseline image (no podos)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o.Logger = log
	o.Files = files
	if extra != "" {
		o.ExtraModules = strings.Split(extra, ",")
	}
	if flags != "" {
		o.BoarddFlags = strings.Fields(flags)
	}
	if o.ConfigPath == "" {
		o.ConfigPath = filepath.Join(o.RepoDir, "board-configs", o.Board+".yaml")
	}
	if o.OutDir == "" {
		o.OutDir = filepath.Join(o.RepoDir, "out", o.Board)
	}
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(o.RepoDir, "out", "cache")
	}
	if o.KernelPath == "" {
		k, err := newestKernel()
		if err != nil {
			fail(err)
		}
		o.KernelPath = k
	}
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		e, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			fail(fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err))
		}
		o.Epoch = e
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := imagebuild.Build(ctx, o); err != nil {
		fail(err)
	}
}

func newestKernel() (string, error) {
	ks, err := filepath.Glob("/boot/vmlinuz-*-amd64")
	if err != nil || len(ks) == 0 {
		return "", fmt.Errorf("no /boot/vmlinuz-*-amd64: install linux-image-amd64 (make deps)")
	}
	return ks[len(ks)-1], nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkimage:", err)
	os.Exit(1)
}
