// Package sysfsfix captures the PCI part of a sysfs tree into a txtar
// archive and extracts such an archive into a directory, so that fabric's
// tests run on real trees (this machine's, the emulated board's) in the
// style of node_exporter's fixtures.
//
// Hand-written because the archive must keep what a plain txtar cannot:
// symlinks (bus/pci/devices/* and driver links) are listed in the archive
// comment as "symlink <path> <target>" lines, and binary files (the PCI
// config space) are stored as hex with a first line "hex:". Files are named
// relative to the sysfs root ("bus/pci/devices/0000:00:03.0", ...).
package sysfsfix

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/tools/txtar"
)

// deviceFiles are the attribute files of a PCI device that fabric reads or
// writes. Write-only files (remove, rescan, reset) are captured empty.
var deviceFiles = []string{
	"vendor", "device", "class", "subsystem_vendor", "subsystem_device", "revision",
	"current_link_speed", "current_link_width", "max_link_speed", "max_link_width",
	"aer_dev_correctable", "aer_dev_nonfatal", "aer_dev_fatal",
	"aer_rootport_total_err_cor", "aer_rootport_total_err_fatal", "aer_rootport_total_err_nonfatal",
	"reset_method", "enable", "config", "remove", "rescan", "reset",
}

var slotFiles = []string{"address", "power", "attention", "latch", "adapter", "cur_bus_speed", "max_bus_speed"}

// Capture reads the PCI devices and slots under sysRoot (normally "/sys")
// and returns them as an archive.
func Capture(sysRoot string) ([]byte, error) {
	var ar txtar.Archive
	var comment bytes.Buffer
	comment.WriteString("sysfs PCI capture (fabric/internal/sysfsfix)\n")
	add := func(rel string, data []byte) {
		if !isText(data) {
			data = []byte("hex:\n" + hexLines(data))
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		ar.Files = append(ar.Files, txtar.File{Name: rel, Data: data})
	}

	devDir := filepath.Join(sysRoot, "bus/pci/devices")
	ents, err := os.ReadDir(devDir)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	for _, e := range ents {
		link := filepath.Join(devDir, e.Name())
		target, err := os.Readlink(link)
		if err != nil {
			return nil, fmt.Errorf("capture %s: %w", link, err)
		}
		fmt.Fprintf(&comment, "symlink bus/pci/devices/%s %s\n", e.Name(), target)
		real := filepath.Join(devDir, target)
		relReal, err := filepath.Rel(sysRoot, real)
		if err != nil {
			return nil, err
		}
		for _, f := range deviceFiles {
			p := filepath.Join(real, f)
			st, err := os.Stat(p)
			if err != nil {
				continue
			}
			var data []byte
			if st.Mode().Perm()&0o444 != 0 {
				data, err = os.ReadFile(p)
				if err != nil {
					data = nil // write-only or unreadable: keep an empty file
				}
			}
			if f == "config" {
				data = trimConfig(data)
			}
			add(filepath.Join(relReal, f), data)
		}
		if drv, err := os.Readlink(filepath.Join(real, "driver")); err == nil {
			fmt.Fprintf(&comment, "symlink %s %s\n", filepath.Join(relReal, "driver"), "../../../bus/pci/drivers/"+filepath.Base(drv))
		}
		if bus, err := os.ReadDir(filepath.Join(real, "pci_bus")); err == nil {
			for _, b := range bus {
				fmt.Fprintf(&comment, "dir %s\n", filepath.Join(relReal, "pci_bus", b.Name()))
			}
		}
	}
	slotDir := filepath.Join(sysRoot, "bus/pci/slots")
	slots, _ := os.ReadDir(slotDir)
	for _, s := range slots {
		for _, f := range slotFiles {
			data, err := os.ReadFile(filepath.Join(slotDir, s.Name(), f))
			if err != nil {
				continue
			}
			add(filepath.Join("bus/pci/slots", s.Name(), f), data)
		}
	}
	if _, err := os.Stat(filepath.Join(sysRoot, "bus/pci/rescan")); err == nil {
		add("bus/pci/rescan", nil)
	}
	ar.Comment = comment.Bytes()
	sort.SliceStable(ar.Files, func(i, j int) bool { return ar.Files[i].Name < ar.Files[j].Name })
	return txtar.Format(&ar), nil
}

// trimConfig drops the trailing zeros of a config space dump (4096 bytes
// for PCIe, mostly zero) down to a 64-byte boundary, keeping at least 256.
func trimConfig(b []byte) []byte {
	n := len(b)
	for n > 256 && b[n-1] == 0 {
		n--
	}
	n = (n + 63) &^ 63
	if n > len(b) {
		n = len(b)
	}
	return b[:n]
}

// hexLines encodes b as hex, 32 bytes a line.
func hexLines(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		n := min(32, len(b))
		sb.WriteString(hex.EncodeToString(b[:n]))
		sb.WriteByte('\n')
		b = b[n:]
	}
	return sb.String()
}

func isText(b []byte) bool {
	for _, c := range b {
		if c == 0 || (c < 0x20 && c != '\n' && c != '\t') || c > 0x7e {
			return false
		}
	}
	return true
}

// Extract writes the archive into dir, which becomes a sysfs root.
func Extract(archive []byte, dir string) error {
	ar := txtar.Parse(archive)
	for _, f := range ar.Files {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("extract: %q escapes the root", f.Name)
		}
		data := f.Data
		if bytes.HasPrefix(data, []byte("hex:\n")) {
			d, err := hex.DecodeString(strings.Join(strings.Fields(string(data[len("hex:\n"):])), ""))
			if err != nil {
				return fmt.Errorf("extract %s: %w", f.Name, err)
			}
			data = d
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(ar.Comment))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) == 3 && fields[0] == "symlink":
			p := filepath.Join(dir, fields[1])
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(fields[2], p); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case len(fields) == 2 && fields[0] == "dir":
			if err := os.MkdirAll(filepath.Join(dir, fields[1]), 0o755); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}
