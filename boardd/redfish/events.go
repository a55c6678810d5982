package redfish

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/boardd/events"
)

type eventServiceSettings struct {
	enabled       bool
	retryAttempts int
	retryInterval int // seconds
}

// subscriptionView is what a subscription shows (EventDestination).
type subscriptionView struct {
	ID                string
	Destination       string
	Context           string
	RegistryPrefixes  []string
	MessageIds        []string
	OriginResources   []string
	ResourceTypes     []string
	VerifyCertificate bool
	headers           map[string]string // write-only
}

func (v subscriptionView) resource(u string) obj {
	o := resource(tEventDest, u, v.ID, "Event subscription "+v.ID)
	o["Destination"] = v.Destination
	o["Context"] = v.Context
	o["Protocol"] = "Redfish"
	o["SubscriptionType"] = "RedfishEvent"
	o["EventFormatType"] = "Event"
	o["RegistryPrefixes"] = nonNil(v.RegistryPrefixes)
	o["MessageIds"] = nonNil(v.MessageIds)
	o["ResourceTypes"] = nonNil(v.ResourceTypes)
	o["OriginResources"] = links(v.OriginResources...)
	o["OriginResources@odata.count"] = len(v.OriginResources)
	o["VerifyCertificate"] = v.VerifyCertificate
	o["HttpHeaders"] = []any{}
	o["DeliveryRetryPolicy"] = "RetryForever"
	o["Status"] = obj{"State": "Enabled", "Health": "OK"}
	return o
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// subscription is a push destination with its own delivery goroutine, so
// a slow or dead destination never holds up the others.
type subscription struct {
	view    subscriptionView
	q       chan []byte
	cancel  context.CancelFunc
	dropped atomic.Uint64
	failed  atomic.Uint64
}

// record is one event as the service fans it out.
type record struct {
	seq     uint64 // 0 for test events
	rec     obj    // the EventRecord
	id      string // MessageId
	origin  string
	resType string
}

// sseClient is one open SSE stream.
type sseClient struct {
	c      chan record
	filter *sseFilter
	lagged atomic.Bool
}

// busLoop fans events from the bus out to SSE streams and subscriptions,
// filling gaps (events the bus dropped) from the durable log.
func (s *Service) busLoop(sub *events.Subscription) {
	defer s.wg.Done()
	defer sub.Close()
	var last uint64
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-sub.C:
			if !ok {
				return
			}
			if ev.Seq != 0 && last != 0 && ev.Seq <= last {
				continue
			}
			if ev.Seq > last+1 && last != 0 && s.o.Events != nil {
				if missed, err := s.o.Events.List(last, int(min(ev.Seq-last-1, 1000))); err == nil {
					for _, m := range missed {
						if m.Seq < ev.Seq {
							s.fanout(s.recordOf(m))
						}
					}
				}
			}
			if ev.Seq != 0 {
				last = ev.Seq
			}
			s.fanout(s.recordOf(ev))
			select {
			case s.logKick <- struct{}{}:
			default:
			}
		}
	}
}

// recordOf renders a boardd event as a Redfish EventRecord.
func (s *Service) recordOf(ev events.Event) record {
	id, text, sev := eventMessage(s.regs, ev)
	args := ev.MessageArgs
	if args == nil {
		args = []string{}
	}
	rec := obj{
		"EventType":       "Alert",
		"MemberId":        "0",
		"EventId":         strconv.FormatUint(ev.Seq, 10),
		"EventTimestamp":  ev.Time.UTC().Format(time.RFC3339),
		"MessageId":       id,
		"Message":         text,
		"MessageArgs":     args,
		"MessageSeverity": sev,
		"Severity":        sev,
	}
	if ev.Origin != "" {
		rec["OriginOfCondition"] = link(ev.Origin)
	}
	r := record{seq: ev.Seq, rec: rec, id: id, origin: ev.Origin}
	if t := s.cur.Load(); t != nil {
		if res, ok := t.res[ev.Origin]; ok {
			typ, _ := res.obj["@odata.type"].(string)
			r.resType, _ = schemaOf(typ)
		}
	}
	return r
}

// payload wraps records in an Event resource.
func payload(id string, ctxt string, recs ...obj) []byte {
	evs := make([]any, len(recs))
	for i, r := range recs {
		c := make(obj, len(r)+1)
		for k, v := range r {
			c[k] = v
		}
		c["MemberId"] = strconv.Itoa(i)
		if ctxt != "" {
			c["Context"] = ctxt
		}
		evs[i] = c
	}
	o := obj{
		"@odata.type":        tEvent,
		"Id":                 id,
		"Name":               "boardd event",
		"Events":             evs,
		"Events@odata.count": len(evs),
	}
	if ctxt != "" {
		o["Context"] = ctxt
	}
	b, _ := json.Marshal(o)
	return b
}

func (s *Service) fanout(r record) {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	if !s.evsvc.enabled {
		return
	}
	for c := range s.sse {
		if c.filter != nil && !c.filter.match(r) {
			continue
		}
		select {
		case c.c <- r:
		default:
			// The client cannot keep up: end its stream; it reconnects
			// with Last-Event-ID and catches up from the log.
			c.lagged.Store(true)
		}
	}
	for _, sub := range s.subs {
		if !sub.view.matches(r) {
			continue
		}
		body := payload(r.rec["EventId"].(string), sub.view.Context, r.rec)
		select {
		case sub.q <- body:
		default:
			sub.dropped.Add(1)
		}
	}
}

func (v subscriptionView) matches(r record) bool {
	if len(v.RegistryPrefixes) > 0 && !slices.Contains(v.RegistryPrefixes, strings.SplitN(r.id, ".", 2)[0]) {
		return false
	}
	if len(v.MessageIds) > 0 && !slices.ContainsFunc(v.MessageIds, func(m string) bool { return messageIDMatch(m, r.id) }) {
		return false
	}
	if len(v.OriginResources) > 0 && !slices.Contains(v.OriginResources, r.origin) {
		return false
	}
	if len(v.ResourceTypes) > 0 && !slices.Contains(v.ResourceTypes, r.resType) {
		return false
	}
	return true
}

// messageIDMatch compares message ids ignoring the registry version when
// either side leaves it out ("ResourceEvent.ResourceStatusChangedCritical").
func messageIDMatch(want, got string) bool {
	if want == got {
		return true
	}
	w, g := strings.Split(want, "."), strings.Split(got, ".")
	if len(w) < 2 || len(g) < 2 || w[0] != g[0] || w[len(w)-1] != g[len(g)-1] {
		return false
	}
	if len(w) == 2 || len(g) == 2 {
		return true
	}
	return w[1] == g[1]
}

// deliver pushes one subscription's events, retrying with backoff.
func (s *Service) deliver(ctx context.Context, sub *subscription) {
	defer s.wg.Done()
	client := s.client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !sub.view.VerifyCertificate} //nolint:gosec // the subscriber chose VerifyCertificate=false
		client = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	}
	for {
		var body []byte
		select {
		case <-ctx.Done():
			return
		case body = <-sub.q:
		}
		s.evMu.Lock()
		attempts, interval := s.evsvc.retryAttempts, time.Duration(s.evsvc.retryInterval)*time.Second
		s.evMu.Unlock()
		for try := 0; ; try++ {
			err := s.post(ctx, client, sub, body)
			if err == nil {
				break
			}
			if try >= attempts {
				sub.failed.Add(1)
				s.log.Warn("event delivery failed; event dropped", "subscription", sub.view.ID, "destination", sub.view.Destination, "err", err)
				break
			}
			// Backoff: the retry interval, doubling, at most 8 times it.
			wait := interval << min(try, 3)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

func (s *Service) post(ctx context.Context, c *http.Client, sub *subscription, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.view.Destination, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range sub.view.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("destination answered %s", resp.Status)
	}
	return nil
}

// logLoop keeps the in-memory tail of the durable log current: at once
// when the bus says there is news, else every 2 s.
func (s *Service) logLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		case <-s.logKick:
		}
		s.pollLog()
	}
}

func (s *Service) pollLog() {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	changed := false
	for range 1000 { // at most a million events per poll
		evs, err := s.o.Events.List(s.logSeq, 1000)
		if err != nil {
			s.log.Warn("event log read", "err", err)
			break
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if ev.Seq > s.logSeq {
				s.logSeq = ev.Seq
			}
		}
		s.logTail = append(s.logTail, evs...)
		if n := len(s.logTail); n > maxLogEntriesInMemory {
			s.logTail = append([]events.Event(nil), s.logTail[n-maxLogEntriesInMemory:]...)
		}
		changed = true
		if len(evs) < 1000 {
			break
		}
	}
	if changed {
		s.bump()
	}
}

// selLoop re-reads the BMC's SEL in the background; GETs serve the copy.
func (s *Service) selLoop() {
	defer s.wg.Done()
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
		entries, err := s.o.SEL.SEL(ctx)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		s.selMu.Lock()
		if err != nil {
			s.sel.err = err.Error()
		} else {
			s.sel.err = ""
			if len(entries) > maxLogEntriesInMemory {
				entries = entries[len(entries)-maxLogEntriesInMemory:]
			}
			s.sel.entries = append([]bmc.SELEntry(nil), entries...)
		}
		s.sel.at = time.Now()
		s.selMu.Unlock()
		s.bump()
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.o.SELInterval):
		}
	}
}

// sseFilter is a DSP0266 SSE $filter: terms "Property eq 'value'" joined
// by "and" / "or" ("and" binds tighter), no parentheses.
type sseFilter struct {
	or [][]sseTerm
}

type sseTerm struct{ prop, value string }

var sseTermRe = regexp.MustCompile(`^\s*(EventFormatType|MessageId|OriginResource|RegistryPrefix|ResourceType)\s+eq\s+'([^']*)'\s*$`)

func parseSSEFilter(f string) (*sseFilter, bool) {
	if len(f) > 2048 {
		return nil, false
	}
	var out sseFilter
	for _, alt := range strings.Split(f, " or ") {
		var and []sseTerm
		for _, t := range strings.Split(alt, " and ") {
			m := sseTermRe.FindStringSubmatch(t)
			if m == nil {
				return nil, false
			}
			and = append(and, sseTerm{m[1], m[2]})
		}
		out.or = append(out.or, and)
	}
	return &out, true
}

func (f *sseFilter) match(r record) bool {
	for _, and := range f.or {
		ok := true
		for _, t := range and {
			switch t.prop {
			case "EventFormatType":
				ok = ok && t.value == "Event"
			case "MessageId":
				ok = ok && messageIDMatch(t.value, r.id)
			case "OriginResource":
				ok = ok && normalize(t.value) == r.origin
			case "RegistryPrefix":
				ok = ok && strings.SplitN(r.id, ".", 2)[0] == t.value
			case "ResourceType":
				ok = ok && r.resType == t.value
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// serveSSE streams events as text/event-stream (id: event seq), replaying
// from the durable log after Last-Event-ID.
func (s *Service) serveSSE(w http.ResponseWriter, r *http.Request) {
	var filter *sseFilter
	params, ok := rawParams(r.URL.RawQuery)
	if !ok {
		s.writeError(w, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", r.URL.RawQuery, "query"))
		return
	}
	for _, kv := range params {
		switch kv[0] {
		case "$filter":
			f, ok := parseSSEFilter(kv[1])
			if !ok {
				s.writeError(w, s.errorf(http.StatusBadRequest, "QueryParameterValueFormatError", kv[1], "$filter"))
				return
			}
			filter = f
		default:
			if strings.HasPrefix(kv[0], "$") {
				s.writeError(w, s.errorf(http.StatusBadRequest, "QueryNotSupported"))
				return
			}
		}
	}
	var after uint64
	replay := false
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			s.writeError(w, s.errorf(http.StatusBadRequest, "HeaderInvalid", "Last-Event-ID: "+v))
			return
		}
		after, replay = n, s.o.Events != nil
	}
	s.evMu.Lock()
	enabled := s.evsvc.enabled
	s.evMu.Unlock()
	if !enabled {
		s.writeError(w, s.errorf(http.StatusServiceUnavailable, "ServiceDisabled", uriEvents))
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	fl, _ := w.(http.Flusher)
	c := &sseClient{c: make(chan record, 256), filter: filter}
	s.evMu.Lock()
	s.sse[c] = struct{}{}
	s.evMu.Unlock()
	defer func() {
		s.evMu.Lock()
		delete(s.sse, c)
		s.evMu.Unlock()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	write := func(rec record) error {
		var b bytes.Buffer
		if rec.seq != 0 {
			fmt.Fprintf(&b, "id: %d\n", rec.seq)
		}
		b.WriteString("data: ")
		b.Write(payload(rec.rec["EventId"].(string), "", rec.rec))
		b.WriteString("\n\n")
		_, err := w.Write(b.Bytes())
		if fl != nil {
			fl.Flush()
		}
		return err
	}
	// A comment at once, so clients see the stream is open.
	w.Write([]byte(": boardd event stream\n\n"))
	if fl != nil {
		fl.Flush()
	}
	sent := after
	if replay {
		for range 1000 {
			evs, err := s.o.Events.List(sent, 500)
			if err != nil || len(evs) == 0 {
				break
			}
			for _, ev := range evs {
				rec := s.recordOf(ev)
				if ev.Seq > sent {
					sent = ev.Seq
				}
				if filter != nil && !filter.match(rec) {
					continue
				}
				if write(rec) != nil {
					return
				}
			}
		}
	}
	keep := time.NewTicker(30 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-keep.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		case rec := <-c.c:
			if rec.seq != 0 && rec.seq <= sent {
				continue
			}
			if rec.seq != 0 {
				sent = rec.seq
			}
			if write(rec) != nil {
				return
			}
			if c.lagged.Load() && len(c.c) == 0 {
				return
			}
		}
	}
}

// persisted is the event service state kept in Options.StateDir.
type persisted struct {
	Enabled       bool           `json:"enabled"`
	RetryAttempts int            `json:"retry_attempts"`
	RetryInterval int            `json:"retry_interval"`
	NextID        int            `json:"next_id"`
	Subs          []persistedSub `json:"subscriptions"`
}

type persistedSub struct {
	subscriptionView
	Headers map[string]string `json:"headers,omitempty"`
}

func (s *Service) statePath() string {
	if s.o.StateDir == "" {
		return ""
	}
	return filepath.Join(s.o.StateDir, "redfish-events.json")
}

// loadEventState restores subscriptions and settings; a missing file is a
// fresh start, a corrupt one an error (nothing is silently lost).
func (s *Service) loadEventState() error {
	p := s.statePath()
	if p == "" {
		return nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("redfish: %w", err)
	}
	var st persisted
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("redfish: %s: %w", p, err)
	}
	s.evMu.Lock()
	defer s.evMu.Unlock()
	s.evsvc = eventServiceSettings{enabled: st.Enabled, retryAttempts: st.RetryAttempts, retryInterval: max(st.RetryInterval, 1)}
	s.nextSub = max(st.NextID, 1)
	for _, ps := range st.Subs {
		v := ps.subscriptionView
		v.headers = ps.Headers
		if v.headers == nil {
			v.headers = map[string]string{}
		}
		s.startSubLocked(v)
	}
	return nil
}

// saveEventState writes the state atomically. Called with evMu held.
func (s *Service) saveEventStateLocked() {
	p := s.statePath()
	if p == "" {
		return
	}
	st := persisted{Enabled: s.evsvc.enabled, RetryAttempts: s.evsvc.retryAttempts, RetryInterval: s.evsvc.retryInterval, NextID: s.nextSub}
	for _, sub := range s.subs {
		st.Subs = append(st.Subs, persistedSub{subscriptionView: sub.view, Headers: sub.view.headers})
	}
	slices.SortFunc(st.Subs, func(a, b persistedSub) int {
		if idLess(a.ID, b.ID) {
			return -1
		}
		return 1
	})
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		tmp := p + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, p)
		}
	}
	if err != nil {
		s.log.Error("saving event subscriptions", "err", err)
	}
}

// startSubLocked registers a subscription and starts its delivery.
// Called with evMu held.
func (s *Service) startSubLocked(v subscriptionView) {
	ctx, cancel := context.WithCancel(s.ctx)
	sub := &subscription{view: v, q: make(chan []byte, 256), cancel: cancel}
	s.subs[v.ID] = sub
	s.wg.Add(1)
	go s.deliver(ctx, sub)
}
