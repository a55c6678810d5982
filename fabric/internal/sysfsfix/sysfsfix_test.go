package sysfsfix

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Extracting a capture and capturing it again gives the same archive.
func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"sys-emulated", "sys-emulated-pciehp", "sys-host"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name+".txtar"))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := Extract(b, dir); err != nil {
				t.Fatal(err)
			}
			again, err := Capture(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, again) {
				t.Errorf("capture of the extracted tree differs (%d vs %d bytes)", len(b), len(again))
			}
		})
	}
}

func TestExtractRefusesEscape(t *testing.T) {
	err := Extract([]byte("-- ../../etc/x --\nboom\n"), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Fatalf("Extract = %v", err)
	}
	if err := Extract([]byte("-- a/config --\nhex:\nzz\n"), t.TempDir()); err == nil {
		t.Fatal("bad hex accepted")
	}
}
