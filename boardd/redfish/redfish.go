// Package redfish is boardd's DMTF Redfish service (DSP0266, schema
// bundle 2025.4; OCP Baseline Hardware Management v1.1). Every resource
// is built from the current board snapshot and rendered once per
// snapshot: no request waits on the BMC. See DESIGN.md.
package redfish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/snapshot"
)

// Options configure the service.
type Options struct {
	Store  *snapshot.Store // current board snapshot; never waits on hardware
	Events events.Reader   // durable event log; may be nil
	Bus    *events.Bus     // live events for SSE and subscriptions; may be nil
	SEL    bmc.SELReader   // the BMC SEL, read in the background; may be nil
	Config *boardconfig.Config
	Auth   *auth.Service
	Logger *slog.Logger
	// Mounts are extra handlers by path prefix (e.g. "/podos/v1/"),
	// behind the same authentication; they read the account with
	// auth.AccountFrom.
	Mounts map[string]http.Handler
	// Extra resource trees (Fabrics, PCIeDevices).
	Extra []Tree

	// Version is boardd's version, shown as the manager's FirmwareVersion.
	Version string
	// HTTPSPort is the port the service listens on, for
	// ManagerNetworkProtocol.
	HTTPSPort int
	// SELInterval is how often the SEL is re-read (default 30 s).
	SELInterval time.Duration
	// HTTPClient delivers events to subscribers; nil uses a client with
	// a 10 s timeout.
	HTTPClient *http.Client
	// StateDir, when set, keeps event subscriptions and event service
	// settings across restarts (redfish-events.json, mode 0600).
	StateDir string
}

// Tree contributes resources built from the snapshot: URI -> JSON object
// (with @odata.id and @odata.type), plus optional POST actions: URI ->
// handler that needs privilege Priv.
type Tree interface {
	Resources(s *snapshot.Snapshot) map[string]map[string]any
	Actions() map[string]Action
}

// Action is a POST action of an extra tree. Do returns nil on success
// (204); an error wrapping ErrBadRequest gives 400, others 500.
type Action struct {
	Priv auth.Privilege
	Do   func(ctx context.Context, body map[string]any) error
}

// ErrBadRequest marks an Action error caused by the request.
var ErrBadRequest = errors.New("bad request")

// Service is the Redfish service.
type Service struct {
	o       Options
	log     *slog.Logger
	regs    registries
	actions map[string]Action
	mounts  []mount

	cur     atomic.Pointer[tree]
	buildMu sync.Mutex
	entries map[string]cachedEntry // rendered log entries, by URI
	gen     atomic.Uint64          // local state: event service, subscriptions, log, SEL

	evMu    sync.Mutex
	evsvc   eventServiceSettings
	subs    map[string]*subscription
	nextSub int
	sse     map[*sseClient]struct{}

	logMu   sync.Mutex
	logTail []events.Event
	logSeq  uint64
	logKick chan struct{}

	selMu sync.Mutex
	sel   selState

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	client   *http.Client
	hostname string
}

type cachedEntry struct {
	key string
	r   *rendered
}

type mount struct {
	prefix string
	h      http.Handler
}

// tree is every resource rendered for one state of the service.
type tree struct {
	snap    *snapshot.Snapshot
	authGen uint64
	gen     uint64
	res     map[string]*rendered
	meta    []byte
	odata   []byte
}

// rendered is one resource: its object and its bytes, rendered once.
type rendered struct {
	obj   obj
	body  []byte
	etag  string
	link  string // Link header
	coll  bool
	etagH []string // header values, shared
	linkH []string
	allow []string
}

var (
	hv40      = []string{"4.0"}
	hvNoCache = []string{"no-cache"}
	hvNosniff = []string{"nosniff"}
	hvHSTS    = []string{"max-age=31536000"}
	hvJSON    = []string{"application/json; charset=utf-8"}
)

// New makes the service and starts its background work (event fan-out,
// log and SEL readers); Close stops it.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("redfish: Options.Store is required")
	}
	if o.Auth == nil {
		return nil, errors.New("redfish: Options.Auth is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SELInterval <= 0 {
		o.SELInterval = 30 * time.Second
	}
	regs, err := loadRegistries()
	if err != nil {
		return nil, err
	}
	s := &Service{
		o:       o,
		log:     o.Logger.With("component", "redfish"),
		regs:    regs,
		actions: map[string]Action{},
		evsvc:   eventServiceSettings{enabled: true, retryAttempts: 3, retryInterval: 30},
		subs:    map[string]*subscription{},
		nextSub: 1,
		sse:     map[*sseClient]struct{}{},
		logKick: make(chan struct{}, 1),
		client:  o.HTTPClient,
	}
	s.hostname, _ = os.Hostname()
	for _, x := range o.Extra {
		for u, a := range x.Actions() {
			s.actions[strings.TrimSuffix(u, "/")] = a
		}
	}
	for p, h := range o.Mounts {
		s.mounts = append(s.mounts, mount{p, h})
	}
	sort.Slice(s.mounts, func(i, j int) bool { return len(s.mounts[i].prefix) > len(s.mounts[j].prefix) })
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.sel.enabled = o.SEL != nil
	if err := s.loadEventState(); err != nil {
		s.cancel()
		return nil, err
	}
	if o.Events != nil {
		s.pollLog() // the first page synchronously: a fresh service shows the log
		s.wg.Add(1)
		go s.logLoop()
	}
	if o.Bus != nil {
		sub := o.Bus.Subscribe(1024)
		s.wg.Add(1)
		go s.busLoop(sub)
	}
	if o.SEL != nil {
		s.wg.Add(1)
		go s.selLoop()
	}
	return s, nil
}

// Close stops the background work and ends SSE streams and deliveries.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Handler returns the HTTP handler: Redfish under /redfish and the
// mounts, everything else 404.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// state returns the tree for the current state, rebuilding it when the
// snapshot, accounts, sessions or local state changed.
func (s *Service) state() *tree {
	snap := s.o.Store.Load()
	ag := s.o.Auth.Generation()
	g := s.gen.Load()
	if t := s.cur.Load(); t != nil && t.snap == snap && t.authGen == ag && t.gen == g {
		return t
	}
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	snap = s.o.Store.Load()
	ag = s.o.Auth.Generation()
	g = s.gen.Load()
	if t := s.cur.Load(); t != nil && t.snap == snap && t.authGen == ag && t.gen == g {
		return t
	}
	t := s.render(snap, ag, g)
	s.cur.Store(t)
	return t
}

func (s *Service) render(snap *snapshot.Snapshot, ag, g uint64) *tree {
	in := buildInput{
		snap:      snap,
		cfg:       s.o.Config,
		version:   s.o.Version,
		hostname:  s.hostname,
		httpsPort: s.o.HTTPSPort,
		accounts:  s.o.Auth.Accounts(),
		sessions:  s.o.Auth.Sessions(),
		timeout:   s.o.Auth.SessionTimeout(),
		extra:     s.o.Extra,
		keys:      map[string]string{},
		have: func(u, k string) bool {
			c, ok := s.entries[u]
			return ok && c.key == k
		},
	}
	s.evMu.Lock()
	in.evsvc = s.evsvc
	for _, sub := range s.subs {
		in.subs = append(in.subs, sub.view)
	}
	s.evMu.Unlock()
	sort.Slice(in.subs, func(i, j int) bool { return idLess(in.subs[i].ID, in.subs[j].ID) })
	s.logMu.Lock()
	in.log = append([]events.Event(nil), s.logTail...)
	s.logMu.Unlock()
	s.selMu.Lock()
	in.sel = s.sel
	s.selMu.Unlock()

	objs := build(in, s.regs)
	t := &tree{snap: snap, authGen: ag, gen: g, res: make(map[string]*rendered, len(objs))}
	cache := make(map[string]cachedEntry, len(in.keys))
	for u, o := range objs {
		k, immutable := in.keys[u]
		if c, ok := s.entries[u]; immutable && ok && c.key == k {
			t.res[u] = c.r
			cache[u] = c
			continue
		}
		if o == nil {
			continue
		}
		r, err := renderOne(o)
		if err != nil {
			s.log.Error("render", "uri", u, "err", err)
			continue
		}
		t.res[u] = r
		if immutable {
			cache[u] = cachedEntry{key: k, r: r}
		}
	}
	s.entries = cache // only render (under buildMu) touches it
	for u, r := range t.res {
		if r.allow == nil {
			r.allow = []string{allowString(s.allowed(u, t))}
		}
	}
	for p, reg := range s.regs {
		var o obj
		if err := json.Unmarshal(reg.raw, &o); err != nil {
			continue
		}
		sum := sha256.Sum256(reg.raw)
		etag := `W/"` + hex.EncodeToString(sum[:8]) + `"`
		link := "<" + schemaURI("#MessageRegistry.v1_7_0.MessageRegistry") + ">; rel=describedby"
		t.res[uriRegs+"/"+p+"/"+reg.id] = &rendered{
			obj: o, body: reg.raw, etag: etag, link: link, etagH: []string{etag}, linkH: []string{link},
		}
	}
	t.meta = metadata(objs)
	t.odata = odataDoc(objs)
	return t
}

func idLess(a, b string) bool {
	x, ex := strconv.Atoi(a)
	y, ey := strconv.Atoi(b)
	if ex == nil && ey == nil {
		return x < y
	}
	return a < b
}

// renderOne serializes a resource with its @odata.etag (a hash of the
// rest of it): marshalled once, the etag spliced in first.
func renderOne(o obj) (*rendered, error) {
	delete(o, "@odata.etag")
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	etag := `W/"` + hex.EncodeToString(sum[:8]) + `"`
	o["@odata.etag"] = etag
	et, _ := json.Marshal(etag)
	body := make([]byte, 0, len(b)+len(et)+20)
	body = append(body, `{"@odata.etag":`...)
	body = append(body, et...)
	if len(b) > 2 {
		body = append(body, ',')
	}
	body = append(body, b[1:]...)
	typ, _ := o["@odata.type"].(string)
	_, coll := o["Members"]
	link := "<" + schemaURI(typ) + ">; rel=describedby"
	return &rendered{obj: o, body: body, etag: etag, link: link, coll: coll, etagH: []string{etag}, linkH: []string{link}}, nil
}

// isPublic reports the URIs served without authentication.
func isPublic(p string) bool {
	switch p {
	case "/redfish", "/redfish/v1", "/redfish/v1/$metadata", "/redfish/v1/odata":
		return true
	}
	return false
}

// normalize trims one trailing slash.
func normalize(p string) string {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		return p[:len(p)-1]
	}
	return p
}

const maxBody = 64 << 10

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
			s.writeError(w, s.errorf(http.StatusInternalServerError, "InternalError"))
		}
	}()
	p := r.URL.Path
	if !strings.HasPrefix(p, "/redfish") || (len(p) > 8 && p[8] != '/') {
		for _, m := range s.mounts {
			if strings.HasPrefix(p, m.prefix) {
				s.o.Auth.MiddlewareWith(m.h, s.authError).ServeHTTP(w, r)
				return
			}
		}
		s.writeError(w, s.errorf(http.StatusNotFound, "ResourceNotFound", "Resource", p))
		return
	}
	h := w.Header()
	// Direct map writes with canonical keys and shared values: this is the
	// hot path (net/http never modifies header values it sends).
	h["Odata-Version"] = hv40
	h["Cache-Control"] = hvNoCache
	h["X-Content-Type-Options"] = hvNosniff
	h["Strict-Transport-Security"] = hvHSTS
	if v := r.Header.Get("OData-Version"); v != "" && v != "4.0" {
		s.writeError(w, s.errorf(http.StatusPreconditionFailed, "HeaderInvalid", "OData-Version: "+v))
		return
	}
	p = normalize(p)
	if p == "/redfish/v1/odata" || p == "/redfish/v1/$metadata" || p == "/redfish" {
		s.serveDoc(w, r, p)
		return
	}
	// Logging in needs no credentials.
	if p == uriSess && r.Method == http.MethodPost {
		s.login(w, r)
		return
	}
	var acct auth.Account
	if !isPublic(p) {
		a, ok := s.o.Auth.Authenticate(r)
		if !ok {
			s.authError(w, r, http.StatusUnauthorized)
			return
		}
		acct = a
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r = r.WithContext(auth.WithAccount(r.Context(), a))
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if p == uriSSE {
			s.serveSSE(w, r)
			return
		}
		s.get(w, r, p)
	case http.MethodPatch, http.MethodPost, http.MethodDelete:
		if isPublic(p) && p != root {
			s.methodNotAllowed(w, p, s.state())
			return
		}
		if p == root {
			a, ok := s.o.Auth.Authenticate(r)
			if !ok {
				s.authError(w, r, http.StatusUnauthorized)
				return
			}
			acct = a
		}
		s.modify(w, r, p, acct)
	default:
		s.methodNotAllowed(w, p, s.state())
	}
}

// allowed lists the methods a URI supports.
func (s *Service) allowed(p string, t *tree) []string {
	if p == uriSSE {
		return []string{"GET"}
	}
	if _, ok := t.res[p]; !ok {
		if _, ok := s.actions[p]; ok || p == uriSubmit {
			return []string{"POST"}
		}
		return nil
	}
	m := []string{"GET", "HEAD"}
	if patchable(p) {
		m = append(m, "PATCH")
	}
	switch p {
	case uriAccts, uriSess, uriSubs:
		m = append(m, "POST")
	}
	if deletable(p) {
		m = append(m, "DELETE")
	}
	return m
}

func (s *Service) methodNotAllowed(w http.ResponseWriter, p string, t *tree) {
	m := s.allowed(p, t)
	if m == nil {
		s.writeError(w, s.errorf(http.StatusNotFound, "ResourceNotFound", "Resource", p))
		return
	}
	w.Header().Set("Allow", strings.Join(m, ", "))
	s.writeError(w, s.errorf(http.StatusMethodNotAllowed, "OperationNotAllowed"))
}

func (s *Service) serveDoc(w http.ResponseWriter, r *http.Request, p string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.writeError(w, s.errorf(http.StatusMethodNotAllowed, "OperationNotAllowed"))
		return
	}
	if r.URL.RawQuery != "" {
		if err := s.noQuery(r); err != nil {
			s.writeError(w, err)
			return
		}
	}
	var body []byte
	ct := "application/json; charset=utf-8"
	switch p {
	case "/redfish":
		body = []byte(`{"v1":"/redfish/v1/"}`)
	case "/redfish/v1/odata":
		body = s.state().odata
	case "/redfish/v1/$metadata":
		body = s.state().meta
		ct = "application/xml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Allow", "GET, HEAD")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// get serves GET and HEAD of a resource.
func (s *Service) get(w http.ResponseWriter, r *http.Request, p string) {
	t := s.state()
	res, ok := t.res[p]
	if !ok {
		if m := s.allowed(p, t); m != nil {
			s.methodNotAllowed(w, p, t)
			return
		}
		s.writeError(w, s.errorf(http.StatusNotFound, "ResourceNotFound", "Resource", p))
		return
	}
	body := res.body
	if r.URL.RawQuery != "" {
		q, err := s.parseQuery(r, res)
		if err != nil {
			s.writeError(w, err)
			return
		}
		if q.active() {
			b, aerr := s.applyQuery(t, p, res, q)
			if aerr != nil {
				s.writeError(w, aerr)
				return
			}
			body = b
		}
	}
	h := w.Header()
	h["Etag"] = res.etagH
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, res.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = hvJSON
	h["Link"] = res.linkH
	if res.allow == nil {
		h["Allow"] = []string{allowString(s.allowed(p, t))}
	} else {
		h["Allow"] = res.allow
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func allowString(m []string) string { return strings.Join(m, ", ") }

// etagMatch compares an If-Match / If-None-Match header with an ETag,
// weakly (DSP0266 ETags are weak).
func etagMatch(header, etag string) bool {
	strip := func(s string) string { return strings.TrimPrefix(strings.TrimSpace(s), "W/") }
	want := strip(etag)
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || strip(c) == want {
			return true
		}
	}
	return false
}

// bump records a change of local state (subscriptions, settings, logs).
func (s *Service) bump() { s.gen.Add(1) }

// readBody reads a JSON object request body.
func (s *Service) readBody(r *http.Request, allowEmpty bool) (map[string]any, *apiError) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
		if mt != "application/json" {
			return nil, s.errorf(http.StatusUnsupportedMediaType, "HeaderInvalid", "Content-Type: "+ct)
		}
	}
	b, err := readLimited(r, maxBody)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, s.errorf(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
		}
		return nil, s.errorf(http.StatusBadRequest, "MalformedJSON")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if allowEmpty {
			return map[string]any{}, nil
		}
		return nil, s.errorf(http.StatusBadRequest, "EmptyJSON")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, s.errorf(http.StatusBadRequest, "MalformedJSON")
	}
	if dec.More() {
		return nil, s.errorf(http.StatusBadRequest, "MalformedJSON")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, s.errorf(http.StatusBadRequest, "MalformedJSON")
	}
	return m, nil
}

var errTooLarge = errors.New("body too large")

func readLimited(r *http.Request, n int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, n))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, fmt.Errorf("read body: %w", err)
	}
	return buf.Bytes(), nil
}

// writeJSON writes an object (not from the cache) with its headers.
func (s *Service) writeJSON(w http.ResponseWriter, status int, o obj) {
	r, err := renderOne(o)
	if err != nil {
		s.writeError(w, s.errorf(http.StatusInternalServerError, "InternalError"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("ETag", r.etag)
	h.Set("Link", r.link)
	h.Set("Content-Length", strconv.Itoa(len(r.body)))
	w.WriteHeader(status)
	w.Write(r.body)
}
