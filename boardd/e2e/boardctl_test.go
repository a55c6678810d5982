package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/internal/testtool"
)

// buildBoardctl builds boardctl into a temporary directory.
func buildBoardctl(t *testing.T) string {
	t.Helper()
	goBin := testtool.Require(t, "go")
	bin := filepath.Join(t.TempDir(), "boardctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "podos.dev/podos/boardd/cmd/boardctl")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build boardctl: %v\n%s", err, out)
	}
	return bin
}

type ctlResult struct {
	code           int
	stdout, stderr string
}

// boardctl runs the binary against the board as user.
func (b *board) boardctl(t *testing.T, bin, user, pwFile string, args ...string) ctlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--url", b.url, "--user", user, "--password-file", pwFile, "--insecure"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	// Keep the environment from choosing for the test.
	cmd.Env = append(os.Environ(), "PODOS_URL=", "PODOS_USER=", "PODOS_PASSWORD_FILE=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := ctlResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("boardctl %v: %v", args, err)
	}
	return r
}

// TestBoardctlAgainstDaemon drives the live daemon (real containerd)
// with the boardctl binary: an administrator lists, execs and reads
// logs; a ReadOnly account created through Redfish's AccountService can
// read but every change (apply, rm, exec) is refused with a clear
// permission error and a non-zero exit, and changes nothing.
func TestBoardctlAgainstDaemon(t *testing.T) {
	bin := buildBoardctl(t)
	b := startBoard(t, boardOptions{workloads: true, config: demoWorkloads(t)})
	b.waitRunning(t)
	b.waitBeats(t, "demo", -1, 2)

	r := b.boardctl(t, bin, adminUser, b.pwFile, "workloads", "list")
	if r.code != 0 {
		t.Fatalf("workloads list: exit %d: %s", r.code, r.stderr)
	}
	for _, w := range b.cfg.Workloads {
		if !containsLine(r.stdout, w.Name, "running", w.Priority) {
			t.Errorf("workloads list lacks %s running %s:\n%s", w.Name, w.Priority, r.stdout)
		}
	}

	// The demo image holds only /heartbeat (no shell, no echo); its -echo
	// flag prints and exits.
	r = b.boardctl(t, bin, adminUser, b.pwFile, "workloads", "exec", "demo", "--", "/heartbeat", "-echo", "hi")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("admin exec: exit %d stdout %q stderr %q, want hi", r.code, r.stdout, r.stderr)
	}
	r = b.boardctl(t, bin, adminUser, b.pwFile, "workloads", "exec", "demo", "--", "echo", "hi")
	t.Logf("admin exec echo (not in the image): exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	if r.code == 0 || !strings.Contains(r.stderr, "echo") {
		t.Errorf("admin exec of a command the image lacks: exit %d stderr %q, want an error naming it", r.code, r.stderr)
	}
	r = b.boardctl(t, bin, adminUser, b.pwFile, "workloads", "logs", "demo")
	if r.code != 0 || !beatRE.MatchString(r.stdout) {
		t.Errorf("admin logs demo: exit %d stderr %q, no heartbeat line in:\n%s", r.code, r.stderr, r.stdout)
	}

	// A ReadOnly operator account, made through Redfish.
	const viewer, viewerPW = "viewer", "viewer-pass-1"
	code, body := b.apiBody(t, "POST", "/redfish/v1/AccountService/Accounts", adminUser, adminPW,
		map[string]any{"UserName": viewer, "Password": viewerPW, "RoleId": "ReadOnly"})
	if code != http.StatusCreated {
		t.Fatalf("create ReadOnly account: %d %s", code, body)
	}
	vpw := filepath.Join(t.TempDir(), "viewer-pw")
	if err := os.WriteFile(vpw, []byte(viewerPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := b.boardctl(t, bin, viewer, vpw, "workloads", "list"); r.code != 0 || !strings.Contains(r.stdout, "demo") {
		t.Errorf("ReadOnly list: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(spec, []byte("name: intruder\nimage: "+b.cfg.Workloads[0].Image+"\npriority: sheddable\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"workloads", "apply", "-f", spec},
		{"workloads", "rm", "demo"},
		{"workloads", "exec", "demo", "--", "/heartbeat", "-echo", "hi"},
	} {
		r := b.boardctl(t, bin, viewer, vpw, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stderr, "ReadOnly") || r.stdout != "" {
			t.Errorf("ReadOnly %v: exit %d stdout %q stderr %q, want a permission error", args, r.code, r.stdout, r.stderr)
		} else {
			t.Logf("ReadOnly %v: exit %d: %s", args[:2], r.code, strings.TrimSpace(r.stderr))
		}
	}
	// Nothing changed.
	if code, _ := b.api(t, "GET", "/podos/v1/workloads/intruder", adminUser, adminPW); code != http.StatusNotFound {
		t.Errorf("intruder workload: GET %d, want 404", code)
	}
	b.waitRunning(t)
}

// containsLine reports whether some line of out holds every word.
func containsLine(out string, words ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		all := true
		for _, w := range words {
			found := false
			for _, x := range f {
				if x == w {
					found = true
				}
			}
			all = all && found
		}
		if all {
			return true
		}
	}
	return false
}
