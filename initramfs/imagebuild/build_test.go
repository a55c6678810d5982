package imagebuild

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"

	"podos.dev/podos/initramfs/kmod"
	"podos.dev/podos/internal/testtool"
)

// Building the same inputs twice gives the same bytes, and the image
// holds what the board needs: u-root's init and shell, podinit as uinit,
// boardd, the board config, and every boot module with its dependencies.
func TestBuildReproducibleAndComplete(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the image twice")
	}
	testtool.Require(t, "go")
	kernels, _ := filepath.Glob("/boot/vmlinuz-*-amd64")
	if len(kernels) == 0 {
		testtool.Missing(t, "no /boot/vmlinuz-*-amd64 (make deps installs linux-image-amd64)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// The board config has workloads: stand-ins for the runtime and the
	// demo archive (what is tested is that they are shipped).
	bins, images := t.TempDir(), t.TempDir()
	for _, b := range WorkloadBinaries {
		os.WriteFile(filepath.Join(bins, b), []byte("stand-in "+b), 0o755)
	}
	os.WriteFile(filepath.Join(images, "demo.tar"), []byte("stand-in archive"), 0o644)
	opts := func(out string) Options {
		return Options{
			WorkloadsBin: bins,
			ImagesDir:    images,
			Board:        "emulated-ruggedpod",
			ConfigPath:   filepath.Join(repo, "board-configs", "emulated-ruggedpod.yaml"),
			RepoDir:      repo,
			KernelPath:   kernels[len(kernels)-1],
			ExtraModules: []string{"crc32c_generic", "ext4"},
			Epoch:        1767225600,
			Compression:  "lz4",
			// Shared with `make image`: the u-root base is built once.
			CacheDir: filepath.Join(repo, "out", "cache"),
			OutDir:   out,
		}
	}
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	ma, err := Build(ctx, opts(dirA))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := Build(ctx, opts(dirB))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dirA, ma.Image))
	b, _ := os.ReadFile(filepath.Join(dirB, mb.Image))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("two builds differ: %s vs %s", ma.ImageSHA256, mb.ImageSHA256)
	}
	manA, _ := os.ReadFile(filepath.Join(dirA, "manifest.json"))
	manB, _ := os.ReadFile(filepath.Join(dirB, "manifest.json"))
	if !bytes.Equal(manA, manB) {
		t.Fatal("manifests differ")
	}
	if ma.Versions["u-root"] != "v0.16.0" || ma.Versions["kernel"] == "" || !strings.HasPrefix(ma.Versions["go"], "go") {
		t.Fatalf("versions %v", ma.Versions)
	}

	raw, err := Decompress("lz4", a)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := ReadCPIO(raw)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := tree.Sums()
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != len(ma.Files) {
		t.Fatalf("archive has %d files, manifest lists %d", len(sums), len(ma.Files))
	}
	for name, sum := range sums {
		if ma.Files[name] != sum {
			t.Errorf("%s: archive sha256 %s, manifest %s", name, sum, ma.Files[name])
		}
	}
	for _, n := range tree.Names() {
		r, _ := tree.Get(n)
		if r.MTime != 1767225600 || r.UID != 0 || r.GID != 0 {
			t.Fatalf("%s: mtime %d uid %d gid %d", n, r.MTime, r.UID, r.GID)
		}
	}
	for _, want := range []string{"init", "bbin/init", "bbin/gosh", "bin/podinit", "bin/boardd", "bin/boardctl", "bin/uinit", "etc/podos/board.yaml", "etc/podos/boot.json", "etc/podos/modules",
		"usr/libexec/podos/containerd", "usr/libexec/podos/containerd-shim-runc-v2", "usr/libexec/podos/runc", "usr/share/podos/images/demo.tar"} {
		if _, ok := tree.Get(want); !ok {
			t.Errorf("image lacks %s", want)
		}
	}
	if r, _ := tree.Get("bin/uinit"); r.Mode&cpio.S_IFMT != cpio.S_IFLNK {
		t.Error("bin/uinit is not a symlink to podinit")
	}
	cfg, _ := os.ReadFile(filepath.Join(repo, "board-configs", "emulated-ruggedpod.yaml"))
	if sums["etc/podos/board.yaml"] != sha(cfg) || ma.BoardConfigSHA256 != sha(cfg) {
		t.Error("board config in the image differs from board-configs/")
	}
	// The image's modules.dep resolves every requested module to files
	// that are in the image.
	rel := ma.Versions["kernel"]
	depRec, ok := tree.Get("lib/modules/" + rel + "/modules.dep")
	if !ok {
		t.Fatal("no modules.dep")
	}
	depData := make([]byte, depRec.FileSize)
	if _, err := depRec.ReadAt(depData, 0); err != nil {
		t.Fatal(err)
	}
	idx, err := kmod.Parse(bytes.NewReader(depData))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	if r, ok := tree.Get("etc/podos/modules"); ok {
		d := make([]byte, r.FileSize)
		_, _ = r.ReadAt(d, 0)
		listed = strings.Fields(string(d))
	}
	order, err := idx.Order(listed, nil)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, f := range order {
		pos[kmod.Name(f)] = i
		if _, ok := tree.Get("lib/modules/" + rel + "/" + f); !ok {
			t.Errorf("module %s is in modules.dep but not in the image", f)
		}
	}
	for _, pair := range [][2]string{{"watchdog", "i6300esb"}, {"ipmi_msghandler", "ipmi_si"}, {"jbd2", "ext4"}, {"virtio", "virtio_net"}} {
		if pos[pair[0]] >= pos[pair[1]] {
			t.Errorf("%s must load before %s: order %v", pair[0], pair[1], order)
		}
	}
	var bj struct {
		Persistent string `json:"persistent"`
	}
	if r, ok := tree.Get("etc/podos/boot.json"); ok {
		d := make([]byte, r.FileSize)
		_, _ = r.ReadAt(d, 0)
		if err := json.Unmarshal(d, &bj); err != nil || bj.Persistent == "" {
			t.Errorf("boot.json %q: %v", d, err)
		}
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	repo, _ := filepath.Abs("../..")
	tests := []struct {
		name string
		o    Options
	}{
		{"missing config", Options{ConfigPath: filepath.Join(t.TempDir(), "nope.yaml"), RepoDir: repo}},
		{"unknown compression", Options{ConfigPath: filepath.Join(repo, "board-configs", "emulated-ruggedpod.yaml"), RepoDir: repo, Compression: "bzip3", KernelPath: "/boot/vmlinuz-x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.OutDir, tt.o.CacheDir = t.TempDir(), t.TempDir()
			if _, err := Build(context.Background(), tt.o); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
