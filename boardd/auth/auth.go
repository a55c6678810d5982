// Package auth is boardd's account and session store and the HTTP
// authentication in front of its APIs (Redfish, /podos/v1): local
// accounts with Redfish roles and privileges, passwords stored as bcrypt
// hashes in the state dir, Basic authentication and X-Auth-Token sessions
// with an idle timeout.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Role is a Redfish role: "Administrator", "Operator" or "ReadOnly".
type Role string

// The Redfish predefined roles.
const (
	Administrator Role = "Administrator"
	Operator      Role = "Operator"
	ReadOnly      Role = "ReadOnly"
)

// Privilege is a Redfish privilege.
type Privilege string

// The Redfish privileges boardd uses.
const (
	Login               Privilege = "Login"
	ConfigureComponents Privilege = "ConfigureComponents"
	ConfigureManager    Privilege = "ConfigureManager"
	ConfigureUsers      Privilege = "ConfigureUsers"
	ConfigureSelf       Privilege = "ConfigureSelf"
)

// Roles lists the roles in a stable order.
var roles = []Role{Administrator, Operator, ReadOnly}

// Roles returns the predefined roles.
func Roles() []Role { return slices.Clone(roles) }

// Privileges returns the privileges a role grants (Redfish's predefined
// roles), or nil for an unknown role.
func (r Role) Privileges() []Privilege {
	switch r {
	case Administrator:
		return []Privilege{Login, ConfigureManager, ConfigureUsers, ConfigureComponents, ConfigureSelf}
	case Operator:
		return []Privilege{Login, ConfigureComponents, ConfigureSelf}
	case ReadOnly:
		return []Privilege{Login, ConfigureSelf}
	}
	return nil
}

// Valid reports whether r is a predefined role.
func (r Role) Valid() bool { return r.Privileges() != nil }

// Password length limits (bcrypt reads at most 72 bytes).
const (
	MinPasswordLength = 8
	MaxPasswordLength = 64
)

// Account is a user account as callers see it (never the hash).
type Account struct {
	ID       string `json:"id"`
	UserName string `json:"user_name"`
	Role     Role   `json:"role"`
	Enabled  bool   `json:"enabled"`
	// Session is the session id when the request came with a session
	// token; empty for Basic authentication.
	Session string `json:"-"`
}

// Has reports whether the account's role grants p.
func (a Account) Has(p Privilege) bool {
	return slices.Contains(a.Role.Privileges(), p)
}

// Session is a login session (X-Auth-Token).
type Session struct {
	ID       string
	UserName string
	Created  time.Time
	ClientIP string
	token    string
	lastUsed time.Time
}

// Errors callers map to Redfish messages.
var (
	ErrNotFound      = errors.New("no such account")
	ErrExists        = errors.New("account already exists")
	ErrBadPassword   = errors.New("password length must be between 8 and 64 characters")
	ErrBadRole       = errors.New("unknown role")
	ErrBadUserName   = errors.New("user name must be 1 to 32 characters of letters, digits, '-', '_' or '.'")
	ErrLastAdmin     = errors.New("the last enabled Administrator account cannot be removed, disabled or demoted")
	ErrBadCredential = errors.New("bad user name or password")
)

type storedAccount struct {
	ID       string `json:"id"`
	UserName string `json:"user_name"`
	Role     Role   `json:"role"`
	Enabled  bool   `json:"enabled"`
	Hash     string `json:"hash"` // bcrypt
}

type basicEntry struct {
	user    string
	expires time.Time // sliding: pushed out on every use
	maxAge  time.Time // absolute
}

// inflight is a Basic verification in progress; concurrent requests with
// the same header wait for it instead of running bcrypt again.
type inflight struct {
	done chan struct{}
	acct Account
	ok   bool
}

// Service holds the accounts and sessions.
type Service struct {
	path   string
	logger *slog.Logger
	now    func() time.Time
	cost   int

	mu       sync.RWMutex
	accounts map[string]*storedAccount // by id
	nextID   int
	sessions map[string]*Session // by token
	nextSess int
	timeout  time.Duration
	gen      uint64 // bumped on every change to accounts or sessions

	// basic caches successful Basic verifications by a hash of the
	// Authorization header: bcrypt is deliberately slow and a Basic
	// client sends the same header on every request.
	// verify bounds concurrent bcrypt checks, so a flood of bad
	// credentials costs at most this many CPUs; cached Basic credentials
	// and sessions never wait on it.
	verify chan struct{}

	basicMu  sync.Mutex
	basic    map[[32]byte]basicEntry
	inflight map[[32]byte]*inflight
}

// BasicCacheTTL is how long a verified Basic credential is trusted
// without running bcrypt again after its last use, and BasicCacheMaxAge
// how long at most. Any account change clears the cache at once.
const (
	BasicCacheTTL    = 60 * time.Second
	BasicCacheMaxAge = 15 * time.Minute
)

// DefaultSessionTimeout is the idle timeout of sessions (Redfish's
// SessionService.SessionTimeout default).
const DefaultSessionTimeout = 30 * time.Minute

// Open loads the accounts from stateDir/accounts.json. When there are no
// accounts yet it creates "admin" (Administrator) with the password read
// from adminPasswordFile (first line, trimmed); without that file it
// generates a random password and writes it to stateDir/admin-password
// (mode 0600) so an operator with access to the state dir can log in.
func Open(stateDir, adminPasswordFile string, logger *slog.Logger) (*Service, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: state dir: %w", err)
	}
	s := &Service{
		path:     filepath.Join(stateDir, "accounts.json"),
		logger:   logger,
		now:      time.Now,
		cost:     bcrypt.DefaultCost,
		accounts: map[string]*storedAccount{},
		nextID:   1,
		sessions: map[string]*Session{},
		timeout:  DefaultSessionTimeout,
		basic:    map[[32]byte]basicEntry{},
		inflight: map[[32]byte]*inflight{},
		verify:   make(chan struct{}, 2),
	}
	b, err := os.ReadFile(s.path)
	switch {
	case err == nil:
		var list []storedAccount
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("auth: %s: %w", s.path, err)
		}
		for i := range list {
			a := list[i]
			if !a.Role.Valid() || a.ID == "" || a.UserName == "" {
				return nil, fmt.Errorf("auth: %s: invalid account %q", s.path, a.UserName)
			}
			s.accounts[a.ID] = &a
			if n, err := strconv.Atoi(a.ID); err == nil && n >= s.nextID {
				s.nextID = n + 1
			}
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return nil, fmt.Errorf("auth: %w", err)
	}
	if len(s.accounts) > 0 {
		return s, nil
	}
	var pw string
	if adminPasswordFile != "" {
		b, err := os.ReadFile(adminPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("auth: admin password: %w", err)
		}
		pw = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	} else {
		r := make([]byte, 18)
		if _, err := rand.Read(r); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		pw = base64.RawURLEncoding.EncodeToString(r)
		f := filepath.Join(stateDir, "admin-password")
		if err := os.WriteFile(f, []byte(pw+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		logger.Warn("no admin password file: generated one", "file", f)
	}
	if _, err := s.Create("admin", pw, Administrator, true); err != nil {
		return nil, fmt.Errorf("auth: first admin account: %w", err)
	}
	return s, nil
}

// SetBcryptCost sets the bcrypt cost of new hashes (tests use
// bcrypt.MinCost to stay fast).
func (s *Service) SetBcryptCost(c int) { s.cost = c }

// Generation changes whenever an account or session changes; the Redfish
// service keys its caches of these resources on it.
func (s *Service) Generation() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

// save writes the accounts atomically. Called with mu held.
func (s *Service) save() error {
	list := make([]storedAccount, 0, len(s.accounts))
	for _, a := range s.accounts {
		list = append(list, *a)
	}
	sort.Slice(list, func(i, j int) bool { return idLess(list[i].ID, list[j].ID) })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("auth: save: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("auth: save: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("auth: save: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("auth: save: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("auth: save: %w", err)
	}
	return nil
}

func idLess(a, b string) bool {
	x, ex := strconv.Atoi(a)
	y, ey := strconv.Atoi(b)
	if ex == nil && ey == nil {
		return x < y
	}
	return a < b
}

func validUserName(n string) bool {
	if n == "" || len(n) > 32 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func validPassword(p string) bool {
	n := utf8.RuneCountInString(p)
	return n >= MinPasswordLength && n <= MaxPasswordLength && len(p) <= 72
}

func (a *storedAccount) public() Account {
	return Account{ID: a.ID, UserName: a.UserName, Role: a.Role, Enabled: a.Enabled}
}

// changed records a change: bumps the generation and forgets cached
// Basic verifications. Called with mu held.
func (s *Service) changed() {
	s.gen++
	s.basicMu.Lock()
	clear(s.basic)
	s.basicMu.Unlock()
}

// Accounts lists the accounts by id.
func (s *Service) Accounts() []Account {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Account, 0, len(s.accounts))
	for _, a := range s.accounts {
		out = append(out, a.public())
	}
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out
}

// Account returns the account with the given id.
func (s *Service) Account(id string) (Account, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.accounts[id]
	if !ok {
		return Account{}, false
	}
	return a.public(), true
}

func (s *Service) byName(name string) *storedAccount {
	for _, a := range s.accounts {
		if a.UserName == name {
			return a
		}
	}
	return nil
}

// Create adds an account and persists it.
func (s *Service) Create(user, password string, role Role, enabled bool) (Account, error) {
	if !validUserName(user) {
		return Account{}, ErrBadUserName
	}
	if !validPassword(password) {
		return Account{}, ErrBadPassword
	}
	if !role.Valid() {
		return Account{}, ErrBadRole
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return Account{}, fmt.Errorf("auth: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName(user) != nil {
		return Account{}, ErrExists
	}
	a := &storedAccount{ID: strconv.Itoa(s.nextID), UserName: user, Role: role, Enabled: enabled, Hash: string(h)}
	s.accounts[a.ID] = a
	if err := s.save(); err != nil {
		delete(s.accounts, a.ID)
		return Account{}, err
	}
	s.nextID++
	s.changed()
	s.logger.Info("account created", "user", user, "role", role)
	return a.public(), nil
}

// Update is a change to an account; nil fields are left alone.
type Update struct {
	UserName *string
	Password *string
	Role     *Role
	Enabled  *bool
}

// enabledAdmins counts enabled Administrators other than id. Called with mu held.
func (s *Service) enabledAdminsExcept(id string) int {
	n := 0
	for _, a := range s.accounts {
		if a.ID != id && a.Enabled && a.Role == Administrator {
			n++
		}
	}
	return n
}

// Modify applies u to the account with the given id and persists it.
func (s *Service) Modify(id string, u Update) (Account, error) {
	var hash string
	if u.Password != nil {
		if !validPassword(*u.Password) {
			return Account{}, ErrBadPassword
		}
		h, err := bcrypt.GenerateFromPassword([]byte(*u.Password), s.cost)
		if err != nil {
			return Account{}, fmt.Errorf("auth: %w", err)
		}
		hash = string(h)
	}
	if u.UserName != nil && !validUserName(*u.UserName) {
		return Account{}, ErrBadUserName
	}
	if u.Role != nil && !u.Role.Valid() {
		return Account{}, ErrBadRole
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return Account{}, ErrNotFound
	}
	old := *a
	n := *a
	if u.UserName != nil && *u.UserName != a.UserName {
		if s.byName(*u.UserName) != nil {
			return Account{}, ErrExists
		}
		n.UserName = *u.UserName
	}
	if u.Role != nil {
		n.Role = *u.Role
	}
	if u.Enabled != nil {
		n.Enabled = *u.Enabled
	}
	if hash != "" {
		n.Hash = hash
	}
	if old.Role == Administrator && old.Enabled && (n.Role != Administrator || !n.Enabled) && s.enabledAdminsExcept(id) == 0 {
		return Account{}, ErrLastAdmin
	}
	*a = n
	if err := s.save(); err != nil {
		*a = old
		return Account{}, err
	}
	// A changed password, role, name or state ends the account's sessions
	// unless only the password changed through the account's own session.
	if n.UserName != old.UserName || n.Role != old.Role || !n.Enabled || hash != "" {
		for t, ss := range s.sessions {
			if ss.UserName == old.UserName {
				delete(s.sessions, t)
			}
		}
	}
	s.changed()
	return a.public(), nil
}

// Delete removes an account and its sessions.
func (s *Service) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return ErrNotFound
	}
	if a.Role == Administrator && a.Enabled && s.enabledAdminsExcept(id) == 0 {
		return ErrLastAdmin
	}
	delete(s.accounts, id)
	if err := s.save(); err != nil {
		s.accounts[id] = a
		return err
	}
	for t, ss := range s.sessions {
		if ss.UserName == a.UserName {
			delete(s.sessions, t)
		}
	}
	s.changed()
	return nil
}

// Verify checks a user name and password (bcrypt; slow on purpose).
func (s *Service) Verify(user, password string) (Account, error) {
	s.verify <- struct{}{}
	defer func() { <-s.verify }()
	s.mu.RLock()
	a := s.byName(user)
	var hash string
	var acct Account
	if a != nil {
		hash, acct = a.Hash, a.public()
	}
	s.mu.RUnlock()
	if a == nil {
		// Spend the same time as a real check so user names cannot be
		// told apart by timing.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Account{}, ErrBadCredential
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil || !acct.Enabled {
		return Account{}, ErrBadCredential
	}
	return acct, nil
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("podos-dummy-password"), bcrypt.DefaultCost)
	return h
})

// SessionTimeout returns the idle timeout of sessions.
func (s *Service) SessionTimeout() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.timeout
}

// SetSessionTimeout sets the idle timeout of sessions (30 s to 24 h).
func (s *Service) SetSessionTimeout(d time.Duration) error {
	if d < 30*time.Second || d > 24*time.Hour {
		return fmt.Errorf("auth: session timeout %s out of range 30s..24h", d)
	}
	s.mu.Lock()
	s.timeout = d
	s.gen++
	s.mu.Unlock()
	return nil
}

// MaxSessions bounds the number of open sessions.
const MaxSessions = 64

// ErrTooManySessions is returned by Login when MaxSessions are open.
var ErrTooManySessions = errors.New("too many sessions")

// Login verifies the credentials and opens a session; it returns the
// session and its token.
func (s *Service) Login(user, password, clientIP string) (Session, string, error) {
	acct, err := s.Verify(user, password)
	if err != nil {
		return Session{}, "", err
	}
	r := make([]byte, 32)
	if _, err := rand.Read(r); err != nil {
		return Session{}, "", fmt.Errorf("auth: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if len(s.sessions) >= MaxSessions {
		return Session{}, "", ErrTooManySessions
	}
	s.nextSess++
	now := s.now()
	ss := &Session{ID: strconv.Itoa(s.nextSess), UserName: acct.UserName, Created: now, ClientIP: clientIP, token: tok, lastUsed: now}
	s.sessions[tok] = ss
	s.gen++
	return *ss, tok, nil
}

// expireLocked drops idle sessions. Called with mu held.
func (s *Service) expireLocked() {
	now := s.now()
	for t, ss := range s.sessions {
		if now.Sub(ss.lastUsed) > s.timeout {
			delete(s.sessions, t)
			s.gen++
		}
	}
}

// Sessions lists the open sessions by id.
func (s *Service) Sessions() []Session {
	s.mu.Lock()
	s.expireLocked()
	out := make([]Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, *ss)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out
}

// SessionByID returns an open session.
func (s *Service) SessionByID(id string) (Session, bool) {
	for _, ss := range s.Sessions() {
		if ss.ID == id {
			return ss, true
		}
	}
	return Session{}, false
}

// Logout ends the session with the given id.
func (s *Service) Logout(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ss := range s.sessions {
		if ss.ID == id {
			delete(s.sessions, t)
			s.gen++
			return true
		}
	}
	return false
}

// token resolves a session token to its account and refreshes the
// session's idle timer.
func (s *Service) token(tok string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[tok]
	if !ok {
		return Account{}, false
	}
	now := s.now()
	if now.Sub(ss.lastUsed) > s.timeout {
		delete(s.sessions, tok)
		s.gen++
		return Account{}, false
	}
	a := s.byName(ss.UserName)
	if a == nil || !a.Enabled {
		return Account{}, false
	}
	ss.lastUsed = now
	acct := a.public()
	acct.Session = ss.ID
	return acct, true
}

// basicAuth resolves a Basic Authorization header, using the cache of
// recent verifications.
func (s *Service) basicAuth(header string) (Account, bool) {
	key := sha256.Sum256([]byte(header))
	now := s.now()
	s.basicMu.Lock()
	e, ok := s.basic[key]
	if ok && now.Before(e.expires) && now.Before(e.maxAge) {
		e.expires = now.Add(BasicCacheTTL)
		s.basic[key] = e
		s.basicMu.Unlock()
		s.mu.RLock()
		a := s.byName(e.user)
		var acct Account
		if a != nil {
			acct = a.public()
		}
		s.mu.RUnlock()
		return acct, a != nil && acct.Enabled
	}
	if f, ok := s.inflight[key]; ok {
		s.basicMu.Unlock()
		<-f.done
		return f.acct, f.ok
	}
	f := &inflight{done: make(chan struct{})}
	s.inflight[key] = f
	s.basicMu.Unlock()

	gen := s.Generation()
	user, pw, ok := parseBasic(header)
	if ok {
		acct, err := s.Verify(user, pw)
		f.acct, f.ok = acct, err == nil
	}
	same := s.Generation() == gen // before basicMu: changed() locks mu, then basicMu
	s.basicMu.Lock()
	delete(s.inflight, key)
	// Cache only if no account changed meanwhile (the change cleared the
	// cache, and this verification may have used the old password).
	if f.ok && same {
		if len(s.basic) > 1024 {
			clear(s.basic)
		}
		s.basic[key] = basicEntry{user: f.acct.UserName, expires: now.Add(BasicCacheTTL), maxAge: now.Add(BasicCacheMaxAge)}
	}
	s.basicMu.Unlock()
	close(f.done)
	return f.acct, f.ok
}

func parseBasic(h string) (user, pw string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pw, ok = strings.Cut(string(b), ":")
	return user, pw, ok
}

// Authenticate resolves a request's credentials: an X-Auth-Token header
// first, then Basic authentication.
func (s *Service) Authenticate(r *http.Request) (Account, bool) {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		return s.token(tok)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		return s.basicAuth(h)
	}
	return Account{}, false
}

// TokenMatches reports whether tok is the token of session id (used to
// let a user end their own session).
func (s *Service) TokenMatches(id, tok string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ss, ok := s.sessions[tok]
	return ok && subtle.ConstantTimeCompare([]byte(ss.ID), []byte(id)) == 1
}

type ctxKey struct{}

// WithAccount returns ctx carrying the account.
func WithAccount(ctx context.Context, a Account) context.Context {
	return context.WithValue(ctx, ctxKey{}, a)
}

// AccountFrom returns the authenticated account of a request's context.
func AccountFrom(ctx context.Context) (Account, bool) {
	a, ok := ctx.Value(ctxKey{}).(Account)
	return a, ok
}

// ErrorWriter writes an authentication or authorization failure. The
// default writes a Redfish error body; the Redfish service installs its
// own so the body uses its registry.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, status int)

// Middleware lets through requests with a valid session token or Basic
// credentials, with the account in the context, and answers the others
// 401 with a Redfish error body.
func (s *Service) Middleware(next http.Handler) http.Handler {
	return s.MiddlewareWith(next, WriteError)
}

// MiddlewareWith is Middleware with a custom error writer.
func (s *Service) MiddlewareWith(next http.Handler, ew ErrorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.Authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="boardd"`)
			ew(w, r, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithAccount(r.Context(), a)))
	})
}

// Require answers 403 unless the request's account has p (401 when
// there is no account at all).
func Require(p Privilege, h http.Handler) http.Handler {
	return RequireWith(p, h, WriteError)
}

// RequireWith is Require with a custom error writer.
func RequireWith(p Privilege, h http.Handler, ew ErrorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := AccountFrom(r.Context())
		if !ok {
			ew(w, r, http.StatusUnauthorized)
			return
		}
		if !a.Has(p) {
			ew(w, r, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// WriteError writes a minimal Redfish error body for 401 and 403.
func WriteError(w http.ResponseWriter, _ *http.Request, status int) {
	id, msg := "Base.1.22.1.NoValidSession", "There is no valid session established with the implementation."
	if status == http.StatusForbidden {
		id, msg = "Base.1.22.1.InsufficientPrivilege", "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation."
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]any{
		"code": id, "message": msg,
		"@Message.ExtendedInfo": []any{map[string]any{
			"@odata.type": "#Message.v1_3_0.Message", "MessageId": id, "Message": msg,
			"MessageArgs": []string{}, "MessageSeverity": "Critical", "Resolution": "Log in with credentials that have the required privileges.",
		}},
	}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	w.Write(body)
}
