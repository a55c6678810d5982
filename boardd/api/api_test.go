package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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

const pw = "correct-horse-1"

type fixture struct {
	srv *httptest.Server
	rt  *fakeruntime.Runtime
	m   *workloads.Manager
}

// newFixture serves the API behind D's real auth middleware, on a
// Manager over the fake runtime (the API's logic is under test here; the
// real runtime is tested in package ctrd).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	pwf := filepath.Join(dir, "admin-pw")
	os.WriteFile(pwf, []byte(pw+"\n"), 0o600)
	svc, err := auth.Open(filepath.Join(dir, "auth"), pwf, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetBcryptCost(bcrypt.MinCost)
	for user, role := range map[string]auth.Role{"viewer": auth.ReadOnly, "op": auth.Operator} {
		if _, err := svc.Create(user, pw, role, true); err != nil {
			t.Fatal(err)
		}
	}
	rt := fakeruntime.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := workloads.New(workloads.Options{Runtime: rt, StateDir: filepath.Join(dir, "wl"), Logger: log, BackoffBase: 10 * time.Millisecond, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	h := api.New(api.Options{Workloads: m, Logger: log, MaxSpecBytes: 4096, MaxImageBytes: 1 << 16})
	srv := httptest.NewServer(svc.Middleware(h))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return &fixture{srv: srv, rt: rt, m: m}
}

func (f *fixture) do(t *testing.T, user, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
	if body != "" && method != http.MethodPost || strings.HasSuffix(path, "/exec") {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errBody(t *testing.T, b []byte) api.ErrorInfo {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body: %s", b)
	}
	return e.Error
}

func TestPrivileges(t *testing.T) {
	f := newFixture(t)
	spec := `{"image":"demo","priority":"sheddable"}`
	tests := []struct {
		user, method, path, body string
		want                     int
	}{
		{"", "GET", "/podos/v1/workloads", "", 401},
		{"viewer", "GET", "/podos/v1/workloads", "", 200},
		{"viewer", "PUT", "/podos/v1/workloads/w1", spec, 403},
		{"op", "PUT", "/podos/v1/workloads/w1", spec, 201},
		{"admin", "PUT", "/podos/v1/workloads/w1", spec, 200},
		{"viewer", "GET", "/podos/v1/workloads/w1", "", 200},
		{"viewer", "GET", "/podos/v1/workloads/w1/logs", "", 200},
		{"viewer", "POST", "/podos/v1/workloads/w1/exec", `{"cmd":["id"]}`, 403},
		{"viewer", "DELETE", "/podos/v1/workloads/w1", "", 403},
		{"viewer", "POST", "/podos/v1/images", "image:x\n", 403},
		{"op", "DELETE", "/podos/v1/workloads/w1", "", 204},
		{"op", "DELETE", "/podos/v1/workloads/w1", "", 404},
	}
	for _, tt := range tests {
		resp, b := f.do(t, tt.user, tt.method, tt.path, tt.body)
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s %s: %d, want %d: %s", tt.user, tt.method, tt.path, resp.StatusCode, tt.want, b)
			continue
		}
		if tt.want == 403 {
			if e := errBody(t, b); e.Code != api.CodeForbidden || !strings.Contains(e.Message, "ConfigureComponents") {
				t.Errorf("403 body %+v", e)
			}
			if len(f.rt.Calls()) > 0 && tt.method == "DELETE" && f.rt.State("w1") == workloads.TaskAbsent {
				t.Errorf("a forbidden delete removed the workload")
			}
		}
	}
}

func TestMalformedSpecNamesTheField(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		body, field, code string
		status            int
	}{
		{`{"image":"demo","memory_mb":"lots"}`, "memory_mb", api.CodeInvalidField, 400},
		{`{"image":"demo","cpu":-2}`, "cpu", api.CodeInvalidField, 400},
		{`{"image":"demo","restart":"sometimes"}`, "restart", api.CodeInvalidField, 400},
		{`{"image":"demo","priority":"vip"}`, "priority", api.CodeInvalidField, 400},
		{`{"image":"demo","colour":"red"}`, "colour", api.CodeInvalidField, 400},
		{`{"image":"demo","args":"not-a-list"}`, "args", api.CodeInvalidField, 400},
		{`{"image":"demo","env":{"1BAD":"x"}}`, "env.1BAD", api.CodeInvalidField, 400},
		{`{"name":"other","image":"demo"}`, "name", api.CodeInvalidField, 400},
		{`{"memory_mb":64}`, "image", api.CodeInvalidField, 400},
		{`{"image":"demo"`, "", api.CodeBadRequest, 400},
		{`[1,2]`, "", api.CodeBadRequest, 400},
		{`{"image":"demo"} {"image":"x"}`, "", api.CodeBadRequest, 400},
		{`{"image":"` + strings.Repeat("a", 5000) + `"}`, "", api.CodeTooLarge, 413},
	}
	for _, tt := range tests {
		resp, b := f.do(t, "op", "PUT", "/podos/v1/workloads/w1", tt.body)
		if resp.StatusCode != tt.status {
			t.Errorf("%.60s: status %d, want %d: %s", tt.body, resp.StatusCode, tt.status, b)
			continue
		}
		e := errBody(t, b)
		if e.Code != tt.code || e.Field != tt.field {
			t.Errorf("%.60s: %+v, want code %s field %q", tt.body, e, tt.code, tt.field)
		}
	}
	if l := f.m.List(); len(l) != 0 {
		t.Errorf("a bad spec was applied: %+v", l)
	}
	resp, b := f.do(t, "op", "PATCH", "/podos/v1/workloads/w1", "{}")
	if resp.StatusCode != 405 || !strings.Contains(resp.Header.Get("Allow"), "PUT") {
		t.Errorf("PATCH: %d %s", resp.StatusCode, b)
	}
	if resp, _ := f.do(t, "op", "GET", "/podos/v1/nothing", ""); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

func TestApplyListLogsExec(t *testing.T) {
	f := newFixture(t)
	resp, b := f.do(t, "op", "PUT", "/podos/v1/workloads/web", `{"image":"demo","args":["-every=1s"],"cpu":0.5,"memory_mb":64,"priority":"normal"}`)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != "/podos/v1/workloads/web" {
		t.Fatalf("apply: %d %s", resp.StatusCode, b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for f.rt.State("web") != workloads.TaskRunning {
		if time.Now().After(deadline) {
			t.Fatal("not running")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, b = f.do(t, "viewer", "GET", "/podos/v1/workloads", "")
	var list api.WorkloadList
	if err := json.Unmarshal(b, &list); err != nil || len(list.Workloads) != 1 {
		t.Fatalf("list: %s", b)
	}
	w := list.Workloads[0]
	if w.Name != "web" || w.Priority != "normal" || w.Spec.MemoryMB != 64 || w.Source != "api" {
		t.Errorf("listed %+v", w)
	}
	// Logs: the fake task wrote one line at start.
	_, b = f.do(t, "viewer", "GET", "/podos/v1/workloads/web/logs?tail=5", "")
	if !strings.Contains(string(b), " stdout started web -every=1s") {
		t.Errorf("logs: %q", b)
	}
	if resp, b := f.do(t, "viewer", "GET", "/podos/v1/workloads/web/logs?tail=x", ""); resp.StatusCode != 400 || errBody(t, b).Field != "tail" {
		t.Errorf("bad tail: %d %s", resp.StatusCode, b)
	}
	// Following streams new lines as they come.
	req, _ := http.NewRequest("GET", f.srv.URL+"/podos/v1/workloads/web/logs?follow=1&tail=0&format=json", nil)
	req.SetBasicAuth("viewer", pw)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fresp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer fresp.Body.Close()
	sc := bufio.NewScanner(fresp.Body)
	sc.Scan() // the line already there
	ring, _ := f.m.Logs("web")
	ring.Add("stderr", "fresh line")
	var got workloads.LogLine
	for sc.Scan() {
		json.Unmarshal(sc.Bytes(), &got)
		if got.Text == "fresh line" {
			break
		}
	}
	if got.Text != "fresh line" || got.Stream != "stderr" {
		t.Fatalf("followed %+v (%v)", got, sc.Err())
	}
	// Exec.
	f.rt.ExecFunc = func(id string, cmd []string, stdout, stderr io.Writer) int {
		io.WriteString(stdout, "out:"+strings.Join(cmd, ","))
		io.WriteString(stderr, "err")
		return 3
	}
	resp, b = f.do(t, "op", "POST", "/podos/v1/workloads/web/exec", `{"cmd":["echo","hi"]}`)
	var res workloads.ExecResult
	if resp.StatusCode != 200 || json.Unmarshal(b, &res) != nil || res.Stdout != "out:echo,hi" || res.Stderr != "err" || res.ExitCode != 3 {
		t.Errorf("exec: %d %s", resp.StatusCode, b)
	}
	if resp, b := f.do(t, "op", "POST", "/podos/v1/workloads/web/exec", `{"cmd":[]}`); resp.StatusCode != 400 || errBody(t, b).Field != "cmd" {
		t.Errorf("empty exec: %d %s", resp.StatusCode, b)
	}
	if resp, _ := f.do(t, "op", "POST", "/podos/v1/workloads/nope/exec", `{"cmd":["x"]}`); resp.StatusCode != 404 {
		t.Errorf("exec on missing: %d", resp.StatusCode)
	}
	// A command that cannot start is the caller's mistake: 422, not 500.
	f.rt.ExecErr = fmt.Errorf("%w: exec: \"nosuch\": executable file not found", workloads.ErrExecStart)
	if resp, b := f.do(t, "op", "POST", "/podos/v1/workloads/web/exec", `{"cmd":["nosuch"]}`); resp.StatusCode != 422 || errBody(t, b).Code != api.CodeExecFailed {
		t.Errorf("exec of a missing command: %d %s", resp.StatusCode, b)
	}
	f.rt.ExecErr = nil
	// Image upload.
	req, _ = http.NewRequest("POST", f.srv.URL+"/podos/v1/images", strings.NewReader("image:example.org/app:1\n"))
	req.SetBasicAuth("op", pw)
	req.Header.Set("Content-Type", "application/x-tar")
	uresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := io.ReadAll(uresp.Body)
	uresp.Body.Close()
	if uresp.StatusCode != 201 || !strings.Contains(string(ub), "example.org/app:1") {
		t.Errorf("upload: %d %s", uresp.StatusCode, ub)
	}
	if resp, b := f.do(t, "op", "POST", "/podos/v1/images", "garbage"); resp.StatusCode != 400 {
		t.Errorf("bad upload: %d %s", resp.StatusCode, b)
	}
	big := strings.Repeat("x", 1<<17)
	if resp, b := f.do(t, "op", "POST", "/podos/v1/images", "image:big\n"+big); resp.StatusCode != 413 {
		t.Errorf("oversized upload: %d %s", resp.StatusCode, b)
	}
}
