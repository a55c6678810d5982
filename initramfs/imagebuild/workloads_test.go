package imagebuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/mkuimage/cpio"

	boardconfig "podos.dev/podos/board-configs"
)

func TestAddWorkloadRuntime(t *testing.T) {
	bins := t.TempDir()
	for _, b := range WorkloadBinaries {
		os.WriteFile(filepath.Join(bins, b), []byte("bin "+b), 0o755)
	}
	images := t.TempDir()
	os.WriteFile(filepath.Join(images, "demo.tar"), []byte("oci"), 0o644)
	demo := boardconfig.Workload{Name: "demo", Image: "oci-archive:/usr/share/podos/images/demo.tar"}
	sentinel := boardconfig.Workload{Name: "sentinel", Image: "oci-archive:/usr/share/podos/images/demo.tar"}
	pulled := boardconfig.Workload{Name: "web", Image: "registry.example/web:1"}
	tests := []struct {
		name      string
		workloads []boardconfig.Workload
		o         Options
		want      []string // archive paths added
		err       string
	}{
		{"no workloads", nil, Options{}, nil, ""},
		{"runtime and archive once", []boardconfig.Workload{demo, sentinel, pulled}, Options{WorkloadsBin: bins, ImagesDir: images},
			[]string{"usr/libexec/podos/containerd", "usr/libexec/podos/containerd-shim-runc-v2", "usr/libexec/podos/runc", "usr/share/podos/images/demo.tar"}, ""},
		{"no runtime directory", []boardconfig.Workload{demo}, Options{ImagesDir: images}, nil, "make containerd-bins"},
		{"runtime missing a binary", []boardconfig.Workload{demo}, Options{WorkloadsBin: t.TempDir(), ImagesDir: images}, nil, "containerd"},
		{"no images directory", []boardconfig.Workload{demo}, Options{WorkloadsBin: bins}, nil, "make demo-image"},
		{"archive missing", []boardconfig.Workload{{Name: "x", Image: "oci-archive:/usr/share/podos/images/x.tar"}}, Options{WorkloadsBin: bins, ImagesDir: images}, nil, "x.tar"},
		{"relative archive path", []boardconfig.Workload{{Name: "x", Image: "oci-archive:x.tar"}}, Options{WorkloadsBin: bins, ImagesDir: images}, nil, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := NewTree()
			err := addWorkloadRuntime(tree, tt.o, &boardconfig.Config{Workloads: tt.workloads})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, n := range tree.Names() {
				if r, _ := tree.Get(n); r.Mode&cpio.S_IFMT == cpio.S_IFREG {
					files = append(files, n)
				}
			}
			if strings.Join(files, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("added files %q, want %q", files, tt.want)
			}
			for _, n := range tt.want {
				r, _ := tree.Get(n)
				if strings.HasPrefix(n, "usr/libexec/") && r.Mode&0o111 == 0 {
					t.Errorf("%s not executable: mode %o", n, r.Mode)
				}
			}
		})
	}
}
