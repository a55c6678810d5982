package imagebuild

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/u-root/mkuimage/cpio"
)

func sampleTree() *Tree {
	t := NewTree()
	t.File("bin/podinit", []byte("\x7fELF podinit"), 0o755)
	t.File("etc/podos/board.yaml", []byte("apiVersion: podos.dev/v1\n"), 0o644)
	t.Add(cpio.Symlink("bin/uinit", "podinit"))
	t.Add(cpio.CharDev("dev/console", 0o600, 5, 1))
	return t
}

func TestTreeWriteIsReproducibleAndRoundTrips(t *testing.T) {
	var a, b bytes.Buffer
	if err := sampleTree().WriteCPIO(&a, 1767225600); err != nil {
		t.Fatal(err)
	}
	// Same content added in another order gives the same bytes.
	t2 := NewTree()
	t2.Add(cpio.CharDev("dev/console", 0o600, 5, 1))
	t2.Add(cpio.Symlink("bin/uinit", "podinit"))
	t2.File("etc/podos/board.yaml", []byte("apiVersion: podos.dev/v1\n"), 0o644)
	t2.File("bin/podinit", []byte("\x7fELF podinit"), 0o755)
	if err := t2.WriteCPIO(&b, 1767225600); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same tree, different bytes")
	}
	// Two archives concatenated, as the kernel accepts them: the second
	// one's records win.
	over := NewTree()
	over.File("bin/podinit", []byte("new"), 0o755)
	var c bytes.Buffer
	if err := over.WriteCPIO(&c, 1); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCPIO(append(append([]byte(nil), a.Bytes()...), c.Bytes()...))
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"bin", "bin/podinit", "bin/uinit", "dev", "dev/console", "etc", "etc/podos", "etc/podos/board.yaml"}
	if names := got.Names(); len(names) != len(wantNames) {
		t.Fatalf("names %q, want %q", names, wantNames)
	}
	sums, err := got.Sums()
	if err != nil {
		t.Fatal(err)
	}
	if sums["bin/podinit"] != sha([]byte("new")) {
		t.Fatal("later archive did not override")
	}
	r, _ := got.Get("etc/podos/board.yaml")
	if r.MTime != 1767225600 || r.UID != 0 || r.GID != 0 {
		t.Fatalf("record info %+v", r.Info)
	}
	if r, _ := got.Get("bin/uinit"); r.Mode&cpio.S_IFMT != cpio.S_IFLNK {
		t.Fatalf("uinit mode %o", r.Mode)
	}
}

// The kernel needs directories before their files: every parent appears
// before its children in the written archive.
func TestWriteCPIOParentsFirst(t *testing.T) {
	tr := NewTree()
	tr.File("a/b-c/d", []byte("x"), 0o644)
	tr.File("a/b/e", []byte("y"), 0o644)
	var buf bytes.Buffer
	if err := tr.WriteCPIO(&buf, 0); err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(buf.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Name == "TRAILER!!!" {
			continue
		}
		if dir := parent(r.Name); dir != "" && !seen[dir] {
			t.Fatalf("%s before its directory %s", r.Name, dir)
		}
		seen[r.Name] = true
	}
}

func parent(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return ""
}

func TestReadCPIOErrors(t *testing.T) {
	for name, data := range map[string][]byte{
		"garbage":   []byte("not a cpio archive at all, just text that is long enough to be a header......................................................"),
		"truncated": func() []byte { var b bytes.Buffer; _ = sampleTree().WriteCPIO(&b, 0); return b.Bytes()[:200] }(),
	} {
		if _, err := ReadCPIO(data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestCompressRoundTrip(t *testing.T) {
	var raw bytes.Buffer
	if err := sampleTree().WriteCPIO(&raw, 0); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"none", "lz4", "zstd", "xz", "gzip"} {
		t.Run(kind, func(t *testing.T) {
			if kind != "none" && kind != "lz4" {
				if _, err := exec.LookPath(map[string]string{"zstd": "zstd", "xz": "xz", "gzip": "gzip"}[kind]); err != nil {
					t.Skip(kind + " not installed")
				}
			}
			c1, err := Compress(context.Background(), kind, raw.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			c2, err := Compress(context.Background(), kind, raw.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c1, c2) {
				t.Fatal("compression is not deterministic")
			}
			back, err := Decompress(kind, c1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, raw.Bytes()) {
				t.Fatal("round trip changed the archive")
			}
		})
	}
	if _, err := Compress(context.Background(), "bzip3", nil); err == nil {
		t.Fatal("unknown compression accepted")
	}
}

func FuzzReadCPIO(f *testing.F) {
	var b bytes.Buffer
	_ = sampleTree().WriteCPIO(&b, 0)
	f.Add(b.Bytes())
	f.Add([]byte("070701"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ReadCPIO(data)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := tr.WriteCPIO(&out, 0); err != nil {
			return
		}
		if _, err := ReadCPIO(out.Bytes()); err != nil {
			t.Fatalf("re-reading a written archive: %v", err)
		}
	})
}
