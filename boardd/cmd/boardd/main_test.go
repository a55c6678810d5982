package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// build compiles the boardd binaries once into dir: boardd, and
// boardd-workloads when withWorkloads.
func build(t *testing.T, dir string, withWorkloads bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pkgs := map[string]string{"boardd": "."}
	if withWorkloads {
		pkgs["boardd-workloads"] = "../boardd-workloads"
	}
	for name, pkg := range pkgs {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
}

// TestBoarddDoesNotLinkWorkloads guards the memory win: boardd must not
// link the containerd client (grpc, the containerd API) that
// boardd-workloads links.
func TestBoarddDoesNotLinkWorkloads(t *testing.T) {
	dir := t.TempDir()
	build(t, dir, true)
	heavy := []string{"github.com/containerd/containerd/v2", "google.golang.org/grpc"}
	for _, tc := range []struct {
		bin      string
		wantLink bool
	}{
		{"boardd", false},
		{"boardd-workloads", true},
	} {
		info, err := buildinfo.ReadFile(filepath.Join(dir, tc.bin))
		if err != nil {
			t.Fatal(err)
		}
		deps := map[string]bool{}
		for _, d := range info.Deps {
			deps[d.Path] = true
		}
		for _, m := range heavy {
			if deps[m] != tc.wantLink {
				t.Errorf("%s links %s: %v, want %v", tc.bin, m, deps[m], tc.wantLink)
			}
		}
	}
}

// TestWorkloadsFlagExecsWorkloadsBinary: `boardd --workloads` hands over
// to the boardd-workloads next to it (shown by an error only the
// workloads part makes: a containerd socket path over the unix limit),
// and without one says so in one line; both exit 2 like any bad flag.
func TestWorkloadsFlagExecsWorkloadsBinary(t *testing.T) {
	withWL, alone := t.TempDir(), t.TempDir()
	build(t, withWL, true)
	build(t, alone, false)
	state := filepath.Join(t.TempDir(), "state")
	longDir := "/run/" + strings.Repeat("x", 120)
	args := []string{"--workloads", "--containerd-dir", longDir, "--state-dir", state,
		"--bmc", "ipmi+lan://admin:password@127.0.0.1:1", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name, dir, want string
	}{
		{"exec", withWL, "longer than 100 bytes"},
		{"missing", alone, "no boardd-workloads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, filepath.Join(tc.dir, "boardd"), args...)
			cmd.Env = append(os.Environ(), "PATH="+t.TempDir()) // no boardd-workloads on PATH
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v (want status 2); stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "boardd: ") || !strings.Contains(lines[0], tc.want) {
				t.Errorf("stderr %q: want one line naming %q", stderr.String(), tc.want)
			}
		})
	}
}
