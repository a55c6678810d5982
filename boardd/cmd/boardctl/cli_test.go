package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"podos.dev/podos/boardd/api"
	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/workloads"
	"podos.dev/podos/boardd/workloads/fakeruntime"
)

type env struct {
	url, dir string
	rt       *fakeruntime.Runtime
	caFile   string
}

// newEnv serves the real API behind the real auth over TLS (a
// self-signed test certificate), on a Manager over the fake runtime.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret-pass\n"), 0o600)
	svc, err := auth.Open(filepath.Join(dir, "auth"), pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetBcryptCost(bcrypt.MinCost)
	if _, err := svc.Create("viewer", "s3cret-pass", auth.ReadOnly, true); err != nil {
		t.Fatal(err)
	}
	rt := fakeruntime.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := workloads.New(workloads.Options{Runtime: rt, StateDir: filepath.Join(dir, "wl"), Logger: log, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	srv := httptest.NewTLSServer(svc.Middleware(api.New(api.Options{Workloads: m, Logger: log})))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	return &env{url: srv.URL, dir: dir, rt: rt, caFile: ca}
}

func (e *env) run(t *testing.T, user string, args ...string) (int, string, string) {
	t.Helper()
	getenv := func(k string) string {
		switch k {
		case "PODOS_URL":
			return e.url
		case "PODOS_USER":
			return user
		case "PODOS_PASSWORD_FILE":
			return filepath.Join(e.dir, "pw")
		}
		return ""
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, strings.NewReader(""), &out, &errb, getenv)
	return code, out.String(), errb.String()
}

func TestWorkloadCommands(t *testing.T) {
	e := newEnv(t)
	spec := filepath.Join(e.dir, "spec.yaml")
	os.WriteFile(spec, []byte(`name: web
image: demo
priority: normal
memory_mb: 64
---
name: batch
image: demo
priority: sheddable
args: ["-every=1s"]
`), 0o600)
	code, out, errs := e.run(t, "admin", "--ca-file", e.caFile, "workloads", "apply", "-f", spec)
	if code != 0 || out != "workload web created\nworkload batch created\n" {
		t.Fatalf("apply: %d %q %q", code, out, errs)
	}
	deadline := time.Now().Add(20 * time.Second)
	for e.rt.State("web") != workloads.TaskRunning || e.rt.State("batch") != workloads.TaskRunning {
		if time.Now().After(deadline) {
			t.Fatal("not running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, _ = e.run(t, "viewer", "--insecure", "workloads", "list")
	if code != 0 || !strings.Contains(out, "NAME") || !strings.Contains(out, "batch") || !strings.Contains(out, "sheddable") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = e.run(t, "viewer", "--insecure", "workloads", "logs", "batch", "--tail", "10")
	if code != 0 || !strings.Contains(out, "started batch -every=1s") {
		t.Fatalf("logs: %d %q", code, out)
	}
	e.rt.ExecFunc = func(id string, cmd []string, stdout, stderr io.Writer) int {
		io.WriteString(stdout, "ran "+strings.Join(cmd, " ")+"\n")
		return 4
	}
	code, out, _ = e.run(t, "admin", "--insecure", "workloads", "exec", "web", "--", "ls", "-l")
	if code != 4 || out != "ran ls -l\n" {
		t.Fatalf("exec: %d %q", code, out)
	}
	// ReadOnly: one clear line, nothing removed.
	code, _, errs = e.run(t, "viewer", "--insecure", "workloads", "rm", "web")
	if code != 1 || !strings.HasPrefix(errs, "boardctl: permission denied") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("viewer rm: %d %q", code, errs)
	}
	code, out, _ = e.run(t, "admin", "--insecure", "workloads", "rm", "web")
	if code != 0 || out != "workload web removed\n" {
		t.Fatalf("rm: %d %q", code, out)
	}
	if e.rt.State("web") != workloads.TaskAbsent {
		t.Error("web still running")
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	e := newEnv(t)
	bad := filepath.Join(e.dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: x\nimage: demo\nmemory_mb: -3\n"), 0o600)
	unknown := filepath.Join(e.dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("name: x\nimage: demo\ncolour: red\n"), 0o600)
	tests := []struct {
		name string
		user string
		args []string
		code int
		want string
	}{
		{"invalid field", "admin", []string{"--insecure", "workloads", "apply", "-f", bad}, 1, "memory_mb"},
		{"unknown field", "admin", []string{"--insecure", "workloads", "apply", "-f", unknown}, 1, "colour"},
		{"self-signed without --insecure", "admin", []string{"workloads", "list"}, 1, "certificate"},
		{"no such workload", "admin", []string{"--insecure", "workloads", "rm", "ghost"}, 1, "no such workload"},
		{"bad usage", "admin", []string{"--insecure", "workloads", "exec", "x"}, 2, "usage: workloads exec"},
		{"unknown command", "admin", []string{"--insecure", "frobnicate"}, 2, "unknown command"},
		{"unreachable", "admin", []string{"--url", "https://127.0.0.1:1", "workloads", "list"}, 1, "cannot reach boardd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := e.run(t, tt.user, tt.args...)
			first, _, _ := strings.Cut(errs, "\n")
			if code != tt.code || !strings.Contains(first, tt.want) || !strings.HasPrefix(first, "boardctl: ") {
				t.Fatalf("code %d, stderr %q; want %d and %q on the first line", code, errs, tt.code, tt.want)
			}
			if tt.code == 1 && strings.Count(errs, "\n") != 1 {
				t.Errorf("not one line: %q", errs)
			}
		})
	}
	// Wrong password.
	os.WriteFile(filepath.Join(e.dir, "pw"), []byte("wrong-password\n"), 0o600)
	code, _, errs := e.run(t, "admin", "--insecure", "workloads", "list")
	if code != 1 || !strings.Contains(errs, "authentication failed") {
		t.Fatalf("bad password: %d %q", code, errs)
	}
}
