package auth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func open(t *testing.T) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("first-admin-pw\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "state"), pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetBcryptCost(bcrypt.MinCost)
	return s, dir
}

func basic(u, p string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
}

func TestFirstAdminAndPersistence(t *testing.T) {
	s, dir := open(t)
	if _, err := s.Verify("admin", "first-admin-pw"); err != nil {
		t.Fatalf("first admin: %v", err)
	}
	if _, err := s.Create("ops", "operator-pw", Operator, true); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "state", "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "operator-pw") || strings.Contains(string(raw), "first-admin-pw") || !strings.Contains(string(raw), "$2a$") {
		t.Fatalf("passwords not stored as bcrypt hashes: %s", raw)
	}
	// Reopen: accounts survive, and the password file no longer applies.
	os.WriteFile(filepath.Join(dir, "pw"), []byte("other-password\n"), 0o600)
	s2, err := Open(filepath.Join(dir, "state"), filepath.Join(dir, "pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Verify("ops", "operator-pw"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if _, err := s2.Verify("admin", "other-password"); err == nil {
		t.Fatal("the admin password file overrode an existing account")
	}
	if a, _ := s2.Create("x", "xxxxxxxx", ReadOnly, true); a.ID != "3" {
		t.Fatalf("ids not continued after reopen: %q", a.ID)
	}
}

func TestGeneratedAdminPassword(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify("admin", strings.TrimSpace(string(b))); err != nil {
		t.Fatalf("generated password: %v", err)
	}
}

func TestRules(t *testing.T) {
	s, _ := open(t)
	bad := "short"
	long := strings.Repeat("x", 65)
	role := Role("Root")
	cases := []struct {
		name string
		err  error
		do   func() error
	}{
		{"short password", ErrBadPassword, func() error { _, err := s.Create("a", bad, ReadOnly, true); return err }},
		{"long password", ErrBadPassword, func() error { _, err := s.Create("a", long, ReadOnly, true); return err }},
		{"bad user name", ErrBadUserName, func() error { _, err := s.Create("a b", "xxxxxxxx", ReadOnly, true); return err }},
		{"bad role", ErrBadRole, func() error { _, err := s.Create("a", "xxxxxxxx", role, true); return err }},
		{"duplicate", ErrExists, func() error { _, err := s.Create("admin", "xxxxxxxx", ReadOnly, true); return err }},
		{"demote last admin", ErrLastAdmin, func() error { r := ReadOnly; _, err := s.Modify("1", Update{Role: &r}); return err }},
		{"disable last admin", ErrLastAdmin, func() error { f := false; _, err := s.Modify("1", Update{Enabled: &f}); return err }},
		{"delete last admin", ErrLastAdmin, func() error { return s.Delete("1") }},
		{"unknown account", ErrNotFound, func() error { return s.Delete("99") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); !errors.Is(err, c.err) {
				t.Fatalf("got %v, want %v", err, c.err)
			}
		})
	}
	for _, c := range []struct {
		r    Role
		p    Privilege
		want bool
	}{
		{Administrator, ConfigureUsers, true}, {Operator, ConfigureUsers, false}, {Operator, ConfigureComponents, true},
		{ReadOnly, Login, true}, {ReadOnly, ConfigureSelf, true}, {ReadOnly, ConfigureComponents, false}, {Operator, ConfigureManager, false},
	} {
		if got := (Account{Role: c.r}).Has(c.p); got != c.want {
			t.Errorf("%s has %s = %v", c.r, c.p, got)
		}
	}
}

func TestSessionsAndIdleTimeout(t *testing.T) {
	s, _ := open(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	if err := s.SetSessionTimeout(time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSessionTimeout(time.Second); err == nil {
		t.Fatal("1 s timeout accepted")
	}
	sess, tok, err := s.Login("admin", "first-admin-pw", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	req := func() *http.Request {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-Auth-Token", tok)
		return r
	}
	now = now.Add(50 * time.Second)
	if a, ok := s.Authenticate(req()); !ok || a.Session != sess.ID {
		t.Fatal("session rejected within its timeout")
	}
	now = now.Add(50 * time.Second) // 50 s after the last use: still alive
	if _, ok := s.Authenticate(req()); !ok {
		t.Fatal("use did not refresh the idle timer")
	}
	now = now.Add(61 * time.Second)
	if _, ok := s.Authenticate(req()); ok {
		t.Fatal("idle session still accepted")
	}
	if len(s.Sessions()) != 0 {
		t.Fatal("expired session still listed")
	}
	if _, _, err := s.Login("admin", "wrong-password", ""); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("bad login: %v", err)
	}
}

func TestBasicCacheInvalidation(t *testing.T) {
	s, _ := open(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	a, err := s.Create("ops", "operator-pw", Operator, true)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", basic("ops", "operator-pw"))
	if _, ok := s.Authenticate(r); !ok {
		t.Fatal("basic rejected")
	}
	if len(s.basic) != 1 {
		t.Fatal("verification not cached")
	}
	pw := "changed-pw-1"
	if _, err := s.Modify(a.ID, Update{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Authenticate(r); ok {
		t.Fatal("old password accepted from the cache after a change")
	}
	r.Header.Set("Authorization", basic("ops", pw))
	if _, ok := s.Authenticate(r); !ok {
		t.Fatal("new password rejected")
	}
	now = now.Add(BasicCacheTTL + time.Second)
	if _, ok := s.Authenticate(r); !ok {
		t.Fatal("rejected after the cache entry expired")
	}
}

func TestMiddlewareAndRequire(t *testing.T) {
	s, _ := open(t)
	if _, err := s.Create("viewer", "viewer-pw", ReadOnly, true); err != nil {
		t.Fatal(err)
	}
	h := s.Middleware(Require(ConfigureComponents, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := AccountFrom(r.Context())
		w.Write([]byte(a.UserName))
	})))
	for _, c := range []struct {
		auth   string
		status int
	}{
		{"", 401}, {basic("admin", "nope"), 401}, {"Bearer x", 401}, {basic("viewer", "viewer-pw"), 403}, {basic("admin", "first-admin-pw"), 200},
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status {
			t.Errorf("%q: %d, want %d", c.auth, w.Code, c.status)
		}
		if w.Code >= 400 && !strings.Contains(w.Body.String(), "@Message.ExtendedInfo") {
			t.Errorf("%q: no Redfish error body: %s", c.auth, w.Body)
		}
	}
}
