// Command mkimage writes podos's demo OCI image archive from a static
// heartbeat binary: mkimage -bin out/heartbeat -o out/images/demo.tar.
// The archive's time comes from SOURCE_DATE_EPOCH (reproducible).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"podos.dev/podos/boardd/workloads/ociarchive"
)

func main() {
	bin := flag.String("bin", "", "static heartbeat binary")
	out := flag.String("o", "demo.tar", "output archive")
	name := flag.String("name", "podos.dev/demo:latest", "image name (io.containerd.image.name)")
	flag.Parse()
	if err := run(*bin, *out, *name); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(bin, out, name string) error {
	if bin == "" {
		return fmt.Errorf("-bin is required")
	}
	created := time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		created = time.Unix(n, 0).UTC()
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = ociarchive.Write(bw, ociarchive.Image{Name: name, Binary: bin, Path: "/heartbeat", Created: created})
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}
