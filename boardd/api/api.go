// Package api serves boardd's versioned JSON API under /podos/v1/: the
// workloads (list, apply, remove, logs, exec) and image uploads. It sits
// behind the Redfish service's authentication (redfish.Options.Mounts)
// and checks privileges itself: reads need Login, changes need
// ConfigureComponents (Operator, Administrator).
//
//	GET    /podos/v1/                         index
//	GET    /podos/v1/workloads                {"workloads":[Info...]}
//	GET    /podos/v1/workloads/{name}         Info
//	PUT    /podos/v1/workloads/{name}         apply a spec (JSON): 201 created, 200 replaced
//	DELETE /podos/v1/workloads/{name}         204 once stopped and removed
//	GET    /podos/v1/workloads/{name}/logs    ?tail=N (default 100, 0 all) &follow=1 (chunked) &format=json (NDJSON)
//	POST   /podos/v1/workloads/{name}/exec    {"cmd":[...],"timeout_seconds":N} -> {"stdout","stderr","exit_code","truncated"}
//	POST   /podos/v1/images                   an OCI image archive (tar) -> 201 {"images":[names]}
//
// Every error is {"error":{"code","message","field"}}; a malformed spec
// is 400 InvalidField naming the field; bodies are size-limited (413).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/workloads"
)

// Prefix is where the API is mounted.
const Prefix = "/podos/v1/"

// Workloads is what the API needs of the workload manager.
type Workloads interface {
	List() []workloads.Info
	Get(name string) (workloads.Info, error)
	Apply(ctx context.Context, s workloads.Spec) (workloads.Info, bool, error)
	Delete(ctx context.Context, name string) error
	Logs(name string) (*workloads.LogRing, error)
	Exec(ctx context.Context, name string, cmd []string) (workloads.ExecResult, error)
	ImportImage(ctx context.Context, r io.Reader) ([]string, error)
}

// Options configure the API.
type Options struct {
	Workloads Workloads
	Logger    *slog.Logger
	// Body limits; zero takes the defaults.
	MaxSpecBytes  int64 // default 64 KiB
	MaxImageBytes int64 // default 512 MiB
	// ExecTimeout bounds an exec (default 60 s; the request may ask less).
	ExecTimeout time.Duration
}

// Error codes in the error body.
const (
	CodeBadRequest     = "BadRequest"
	CodeInvalidField   = "InvalidField"
	CodeUnauthorized   = "Unauthorized"
	CodeForbidden      = "Forbidden"
	CodeNotFound       = "NotFound"
	CodeConflict       = "Conflict"
	CodeTooLarge       = "PayloadTooLarge"
	CodeUnsupported    = "UnsupportedMediaType"
	CodeMethod         = "MethodNotAllowed"
	CodeInternal       = "InternalError"
	CodeUnavailable    = "ServiceUnavailable"
	CodeGatewayTimeout = "Timeout"
	CodeExecFailed     = "ExecFailed"
)

// ErrorBody is every error response: {"error":{"code","message","field"}}.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo says what went wrong.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// ExecRequest is the body of POST .../exec.
type ExecRequest struct {
	Cmd            []string `json:"cmd"`
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"`
}

// WorkloadList is the body of GET /podos/v1/workloads.
type WorkloadList struct {
	Workloads []workloads.Info `json:"workloads"`
}

// ImageList is the body of POST /podos/v1/images.
type ImageList struct {
	Images []string `json:"images"`
}

type server struct {
	o   Options
	log *slog.Logger
}

// New returns the API handler (paths include the /podos/v1/ prefix).
func New(o Options) http.Handler {
	if o.MaxSpecBytes <= 0 {
		o.MaxSpecBytes = 64 << 10
	}
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = 512 << 20
	}
	if o.ExecTimeout <= 0 {
		o.ExecTimeout = 60 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &server{o: o, log: o.Logger.With("component", "api")}
	mux := http.NewServeMux()
	read, write := auth.Login, auth.ConfigureComponents
	mux.Handle("GET /podos/v1/{$}", s.need(read, s.root))
	mux.Handle("GET /podos/v1/workloads", s.need(read, s.list))
	mux.Handle("GET /podos/v1/workloads/{name}", s.need(read, s.get))
	mux.Handle("PUT /podos/v1/workloads/{name}", s.need(write, s.apply))
	mux.Handle("DELETE /podos/v1/workloads/{name}", s.need(write, s.remove))
	mux.Handle("GET /podos/v1/workloads/{name}/logs", s.need(read, s.logs))
	mux.Handle("POST /podos/v1/workloads/{name}/exec", s.need(write, s.exec))
	mux.Handle("POST /podos/v1/images", s.need(write, s.upload))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if _, pattern := mux.Handler(r); pattern == "" {
			// Distinguish a wrong method from a wrong path, in our format.
			if allowed := allowedMethods(mux, r); allowed != "" {
				w.Header().Set("Allow", allowed)
				writeError(w, http.StatusMethodNotAllowed, CodeMethod, fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allowed), "")
				return
			}
			writeError(w, http.StatusNotFound, CodeNotFound, "no such resource: "+r.URL.Path, "")
			return
		}
		mux.ServeHTTP(w, r) // matches again, setting the path values
	})
}

func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	var ok []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := mux.Handler(r2); p != "" {
			ok = append(ok, m)
		}
	}
	return strings.Join(ok, ", ")
}

// need answers 401 without an authenticated account and 403 without p.
func (s *server) need(p auth.Privilege, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := auth.AccountFrom(r.Context())
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="boardd"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "authentication required", "")
			return
		}
		if !a.Has(p) {
			writeError(w, http.StatusForbidden, CodeForbidden, fmt.Sprintf("account %s (%s) lacks the %s privilege", a.UserName, a.Role, p), "")
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, CodeInternal, "encode response: "+err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	b, _ := json.Marshal(ErrorBody{Error: ErrorInfo{Code: code, Message: msg, Field: field}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// fail maps a manager error to a response.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var fe *workloads.FieldError
	var mbe *http.MaxBytesError
	var br *BadRequest
	switch {
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit), "")
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, CodeBadRequest, br.Msg, "")
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, CodeInvalidField, fe.Error(), fe.Field)
	case errors.Is(err, workloads.ErrNoWorkload):
		writeError(w, http.StatusNotFound, CodeNotFound, err.Error(), "")
	case errors.Is(err, workloads.ErrExecStart):
		writeError(w, http.StatusUnprocessableEntity, CodeExecFailed, err.Error(), "cmd")
	case errors.Is(err, workloads.ErrNotRunning):
		writeError(w, http.StatusConflict, CodeConflict, err.Error(), "")
	case errors.Is(err, workloads.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error(), "")
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, CodeGatewayTimeout, err.Error(), "")
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error(), "")
	}
}

func (s *server) root(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version":   "v1",
		"workloads": Prefix + "workloads",
		"images":    Prefix + "images",
	})
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, WorkloadList{Workloads: s.o.Workloads.List()})
}

func (s *server) get(w http.ResponseWriter, r *http.Request) {
	i, err := s.o.Workloads.Get(r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, i)
}

func (s *server) apply(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !jsonBody(r) {
		writeError(w, http.StatusUnsupportedMediaType, CodeUnsupported, "the workload spec must be application/json", "")
		return
	}
	spec, err := DecodeSpec(http.MaxBytesReader(w, r.Body, s.o.MaxSpecBytes))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if spec.Name == "" {
		spec.Name = name
	}
	if spec.Name != name {
		writeError(w, http.StatusBadRequest, CodeInvalidField, fmt.Sprintf("field name: %q differs from the URL's %q", spec.Name, name), "name")
		return
	}
	info, created, err := s.o.Workloads.Apply(r.Context(), spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", Prefix+"workloads/"+name)
	}
	writeJSON(w, status, info)
}

func (s *server) remove(w http.ResponseWriter, r *http.Request) {
	if err := s.o.Workloads.Delete(r.Context(), r.PathValue("name")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) logs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	tail := 100
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, CodeInvalidField, "tail must be a non-negative integer (0: everything kept)", "tail")
			return
		}
		tail = n
	}
	follow := false
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidField, "follow must be 1, 0, true or false", "follow")
			return
		}
		follow = b
	}
	asJSON := q.Get("format") == "json"
	ring, err := s.o.Workloads.Logs(name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	write := func(l workloads.LogLine) {
		if asJSON {
			b, _ := json.Marshal(l)
			w.Write(append(b, '\n'))
			return
		}
		fmt.Fprintf(w, "%s %s %s\n", l.Time.Format(time.RFC3339Nano), l.Stream, l.Text)
	}
	if asJSON {
		w.Header().Set("Content-Type", "application/x-ndjson")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	if !follow {
		for _, l := range ring.Tail(tail) {
			write(l)
		}
		return
	}
	lines, c, cancel := ring.Follow(tail)
	defer cancel()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a follow stream outlives the server's write timeout
	w.WriteHeader(http.StatusOK)
	for _, l := range lines {
		write(l)
	}
	_ = rc.Flush()
	check := time.NewTicker(2 * time.Second)
	defer check.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case l, ok := <-c:
			if !ok {
				return
			}
			write(l)
			// Send what is queued in one chunk.
			for n := len(c); n > 0; n-- {
				write(<-c)
			}
			if err := rc.Flush(); err != nil {
				return
			}
		case <-check.C:
			if _, err := s.o.Workloads.Get(name); err != nil {
				return // removed: end the stream
			}
		}
	}
}

func (s *server) exec(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(r) {
		writeError(w, http.StatusUnsupportedMediaType, CodeUnsupported, "the exec request must be application/json", "")
		return
	}
	var req ExecRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.o.MaxSpecBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, jsonFieldError(err))
		return
	}
	if len(req.Cmd) == 0 {
		writeError(w, http.StatusBadRequest, CodeInvalidField, "field cmd: is required", "cmd")
		return
	}
	timeout := s.o.ExecTimeout
	if req.TimeoutSeconds < 0 {
		writeError(w, http.StatusBadRequest, CodeInvalidField, "field timeout_seconds: must not be negative", "timeout_seconds")
		return
	}
	if d := time.Duration(req.TimeoutSeconds) * time.Second; d > 0 && d < timeout {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res, err := s.o.Workloads.Exec(ctx, r.PathValue("name"), req.Cmd)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) upload(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, s.o.MaxImageBytes)
	names, err := s.o.Workloads.ImportImage(r.Context(), body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, r, err)
			return
		}
		if errors.Is(err, workloads.ErrUnavailable) {
			s.fail(w, r, err)
			return
		}
		writeError(w, http.StatusBadRequest, CodeBadRequest, "not an importable OCI image archive: "+err.Error(), "")
		return
	}
	writeJSON(w, http.StatusCreated, ImageList{Images: names})
}

func jsonBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return ct == "" || strings.HasPrefix(ct, "application/json")
}
