package redfish

import (
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/events"
)

// Limits on client-created resources.
const (
	maxSubscriptions = 16
	maxStringLen     = 256
)

func under(p, parent string) (string, bool) {
	rest, ok := strings.CutPrefix(p, parent+"/")
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

func patchable(p string) bool {
	if p == uriSession || p == uriEvents {
		return true
	}
	if _, ok := under(p, uriAccts); ok {
		return true
	}
	_, ok := under(p, uriSubs)
	return ok
}

func deletable(p string) bool {
	for _, c := range []string{uriAccts, uriSess, uriSubs} {
		if _, ok := under(p, c); ok {
			return true
		}
	}
	return false
}

// privilegeFor is the privilege a write needs (Redfish privilege
// registry): accounts need ConfigureUsers, the manager's services
// ConfigureManager, components ConfigureComponents.
func privilegeFor(p string) auth.Privilege {
	switch {
	case strings.HasPrefix(p, uriAcctSvc):
		return auth.ConfigureUsers
	case strings.HasPrefix(p, uriSession), strings.HasPrefix(p, uriEvents), strings.HasPrefix(p, root+"/Managers"), strings.HasPrefix(p, uriRegs):
		return auth.ConfigureManager
	}
	return auth.ConfigureComponents
}

// modify serves PATCH, POST and DELETE.
func (s *Service) modify(w http.ResponseWriter, r *http.Request, p string, acct auth.Account) {
	t := s.state()
	if r.URL.RawQuery != "" {
		if err := s.noQuery(r); err != nil {
			s.writeError(w, err)
			return
		}
	}
	if a, ok := s.actions[p]; ok && r.Method == http.MethodPost {
		s.runAction(w, r, a, acct)
		return
	}
	if p == uriSubmit && r.Method == http.MethodPost {
		if !acct.Has(auth.ConfigureManager) {
			s.authError(w, r, http.StatusForbidden)
			return
		}
		s.submitTestEvent(w, r)
		return
	}
	allowed := s.allowed(p, t)
	if allowed == nil {
		s.writeError(w, s.errorf(http.StatusNotFound, "ResourceNotFound", "Resource", p))
		return
	}
	ok := false
	for _, m := range allowed {
		ok = ok || m == r.Method
	}
	if !ok {
		s.methodNotAllowed(w, p, t)
		return
	}
	res := t.res[p]
	self := false
	if id, ok := under(p, uriAccts); ok {
		self = id == acct.ID
	}
	sessSelf := false
	if id, ok := under(p, uriSess); ok {
		sessSelf = id == acct.Session
	}
	need := privilegeFor(p)
	switch {
	case r.Method == http.MethodPatch && self && acct.Has(auth.ConfigureSelf):
		need = auth.ConfigureSelf // narrowed below to the password
	case r.Method == http.MethodDelete && sessSelf:
		need = auth.ConfigureSelf
	}
	if !acct.Has(need) {
		s.authError(w, r, http.StatusForbidden)
		return
	}
	if im := r.Header.Get("If-Match"); im != "" && r.Method != http.MethodPost {
		if !etagMatch(im, res.etag) {
			s.writeError(w, s.errorf(http.StatusPreconditionFailed, "PreconditionFailed"))
			return
		}
	}
	switch r.Method {
	case http.MethodDelete:
		s.delete(w, r, p)
	case http.MethodPost:
		body, err := s.readBody(r, false)
		if err != nil {
			s.writeError(w, err)
			return
		}
		switch p {
		case uriAccts:
			s.createAccount(w, body)
		case uriSubs:
			s.createSubscription(w, body)
		}
	case http.MethodPatch:
		body, err := s.readBody(r, false)
		if err != nil {
			s.writeError(w, err)
			return
		}
		onlySelf := self && !acct.Has(auth.ConfigureUsers)
		s.patch(w, r, p, res, body, onlySelf)
	}
}

// field is a writable property and its type.
type field struct {
	kind     string // "string", "bool", "int", "enum", "password"
	enum     []string
	min, max int
}

var patchFields = map[string]map[string]field{
	"account": {
		"UserName": {kind: "string"},
		"Password": {kind: "password"},
		"RoleId":   {kind: "enum", enum: []string{"Administrator", "Operator", "ReadOnly"}},
		"Enabled":  {kind: "bool"},
		"Locked":   {kind: "enum-bool-false"},
	},
	"session": {"SessionTimeout": {kind: "int", min: 30, max: 86400}},
	"events": {
		"ServiceEnabled":               {kind: "bool"},
		"DeliveryRetryAttempts":        {kind: "int", min: 0, max: 10},
		"DeliveryRetryIntervalSeconds": {kind: "int", min: 1, max: 3600},
	},
	"subscription": {"Context": {kind: "string"}},
}

func patchKind(p string) string {
	switch {
	case p == uriSession:
		return "session"
	case p == uriEvents:
		return "events"
	case strings.HasPrefix(p, uriAccts+"/"):
		return "account"
	case strings.HasPrefix(p, uriSubs+"/"):
		return "subscription"
	}
	return ""
}

// check validates the body against writable fields; it returns the
// accepted values or every problem at once.
func (s *Service) check(body map[string]any, fields map[string]field, current obj) (map[string]any, *apiError) {
	out := map[string]any{}
	var msgs []map[string]any
	for k, v := range body {
		if strings.HasPrefix(k, "@") {
			continue // OData annotations such as @odata.etag are ignored
		}
		f, ok := fields[k]
		if !ok {
			if _, known := current[k]; known {
				msgs = append(msgs, relate(s.regs.message("PropertyNotWritable", k), "#/"+k))
			} else {
				msgs = append(msgs, relate(s.regs.message("PropertyUnknown", k), "#/"+k))
			}
			continue
		}
		js, _ := json.Marshal(v)
		bad := func() { msgs = append(msgs, relate(s.regs.message("PropertyValueTypeError", string(js), k), "#/"+k)) }
		switch f.kind {
		case "string", "password":
			str, ok := v.(string)
			if !ok {
				bad()
				continue
			}
			if len(str) > maxStringLen {
				msgs = append(msgs, relate(s.regs.message("StringValueTooLong", k, strconv.Itoa(maxStringLen)), "#/"+k))
				continue
			}
			out[k] = str
		case "bool":
			b, ok := v.(bool)
			if !ok {
				bad()
				continue
			}
			out[k] = b
		case "enum-bool-false":
			b, ok := v.(bool)
			if !ok {
				bad()
				continue
			}
			if b {
				msgs = append(msgs, relate(s.regs.message("PropertyValueNotInList", "true", k), "#/"+k))
				continue
			}
		case "int":
			n, ok := v.(json.Number)
			if !ok {
				bad()
				continue
			}
			f64, err := n.Float64()
			if err != nil || f64 != math.Trunc(f64) {
				bad()
				continue
			}
			if f64 < float64(f.min) || f64 > float64(f.max) {
				msgs = append(msgs, relate(s.regs.message("PropertyValueOutOfRange", string(js), k), "#/"+k))
				continue
			}
			out[k] = int(f64)
		case "enum":
			str, ok := v.(string)
			if !ok {
				bad()
				continue
			}
			found := false
			for _, e := range f.enum {
				found = found || e == str
			}
			if !found {
				msgs = append(msgs, relate(s.regs.message("PropertyValueNotInList", str, k), "#/"+k))
				continue
			}
			out[k] = str
		}
	}
	if len(msgs) > 0 {
		return nil, &apiError{status: http.StatusBadRequest, msgs: msgs}
	}
	return out, nil
}

// patch applies a PATCH atomically: any bad property rejects the whole
// request (400) and nothing changes.
func (s *Service) patch(w http.ResponseWriter, r *http.Request, p string, res *rendered, body map[string]any, onlySelf bool) {
	kind := patchKind(p)
	vals, aerr := s.check(body, patchFields[kind], res.obj)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	if len(vals) == 0 && len(body) > 0 {
		// Only annotations or Locked=false: nothing to change.
	}
	switch kind {
	case "account":
		if onlySelf {
			for k := range vals {
				if k != "Password" {
					s.authError(w, r, http.StatusForbidden)
					return
				}
			}
		}
		id, _ := under(p, uriAccts)
		var u auth.Update
		if v, ok := vals["UserName"].(string); ok {
			u.UserName = &v
		}
		if v, ok := vals["Password"].(string); ok {
			u.Password = &v
		}
		if v, ok := vals["RoleId"].(string); ok {
			role := auth.Role(v)
			u.Role = &role
		}
		if v, ok := vals["Enabled"].(bool); ok {
			u.Enabled = &v
		}
		if _, err := s.o.Auth.Modify(id, u); err != nil {
			s.writeError(w, s.accountError(err))
			return
		}
	case "session":
		if v, ok := vals["SessionTimeout"].(int); ok {
			if err := s.o.Auth.SetSessionTimeout(time.Duration(v) * time.Second); err != nil {
				s.writeError(w, s.errorf(http.StatusBadRequest, "PropertyValueOutOfRange", strconv.Itoa(v), "SessionTimeout"))
				return
			}
		}
	case "events":
		s.evMu.Lock()
		if v, ok := vals["ServiceEnabled"].(bool); ok {
			s.evsvc.enabled = v
		}
		if v, ok := vals["DeliveryRetryAttempts"].(int); ok {
			s.evsvc.retryAttempts = v
		}
		if v, ok := vals["DeliveryRetryIntervalSeconds"].(int); ok {
			s.evsvc.retryInterval = v
		}
		s.saveEventStateLocked()
		s.evMu.Unlock()
		s.bump()
	case "subscription":
		id, _ := under(p, uriSubs)
		s.evMu.Lock()
		sub, ok := s.subs[id]
		if ok {
			if v, ok := vals["Context"].(string); ok {
				sub.view.Context = v
			}
			s.saveEventStateLocked()
		}
		s.evMu.Unlock()
		if !ok {
			s.writeError(w, s.errorf(http.StatusNotFound, "ResourceNotFound", "EventDestination", id))
			return
		}
		s.bump()
	}
	t := s.state()
	if res, ok := t.res[p]; ok {
		s.writeCached(w, http.StatusOK, res)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) writeCached(w http.ResponseWriter, status int, res *rendered) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("ETag", res.etag)
	h.Set("Link", res.link)
	h.Set("Content-Length", strconv.Itoa(len(res.body)))
	w.WriteHeader(status)
	w.Write(res.body)
}

func (s *Service) accountError(err error) *apiError {
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return s.errorf(http.StatusNotFound, "ResourceNotFound", "ManagerAccount", "")
	case errors.Is(err, auth.ErrExists):
		return s.errorf(http.StatusConflict, "ResourceAlreadyExists", "ManagerAccount", "UserName", "")
	case errors.Is(err, auth.ErrBadPassword):
		return &apiError{status: http.StatusBadRequest, msgs: []map[string]any{relate(s.regs.message("PropertyValueFormatError", "<redacted>", "Password"), "#/Password")}}
	case errors.Is(err, auth.ErrBadUserName):
		return &apiError{status: http.StatusBadRequest, msgs: []map[string]any{relate(s.regs.message("PropertyValueFormatError", "<redacted>", "UserName"), "#/UserName")}}
	case errors.Is(err, auth.ErrBadRole):
		return s.errorf(http.StatusBadRequest, "PropertyValueNotInList", "", "RoleId")
	case errors.Is(err, auth.ErrLastAdmin):
		return s.errorf(http.StatusConflict, "ResourceCannotBeDeleted")
	}
	s.log.Error("account change", "err", err)
	return s.errorf(http.StatusInternalServerError, "InternalError")
}

func (s *Service) delete(w http.ResponseWriter, r *http.Request, p string) {
	if id, ok := under(p, uriAccts); ok {
		if err := s.o.Auth.Delete(id); err != nil {
			s.writeError(w, s.accountError(err))
			return
		}
	} else if id, ok := under(p, uriSess); ok {
		if !s.o.Auth.Logout(id) {
			s.writeError(w, s.errorf(http.StatusNotFound, "ResourceNotFound", "Session", id))
			return
		}
	} else if id, ok := under(p, uriSubs); ok {
		s.evMu.Lock()
		sub, ok := s.subs[id]
		delete(s.subs, id)
		if ok {
			s.saveEventStateLocked()
		}
		s.evMu.Unlock()
		if !ok {
			s.writeError(w, s.errorf(http.StatusNotFound, "ResourceNotFound", "EventDestination", id))
			return
		}
		sub.cancel()
		s.bump()
	}
	w.WriteHeader(http.StatusNoContent)
}

// required reads required string properties, reporting all missing.
func (s *Service) required(body map[string]any, keys ...string) (map[string]string, *apiError) {
	out := map[string]string{}
	var msgs []map[string]any
	for _, k := range keys {
		v, ok := body[k]
		if !ok {
			msgs = append(msgs, relate(s.regs.message("PropertyMissing", k), "#/"+k))
			continue
		}
		str, ok := v.(string)
		if !ok {
			js, _ := json.Marshal(v)
			msgs = append(msgs, relate(s.regs.message("PropertyValueTypeError", string(js), k), "#/"+k))
			continue
		}
		if len(str) > maxStringLen {
			msgs = append(msgs, relate(s.regs.message("StringValueTooLong", k, strconv.Itoa(maxStringLen)), "#/"+k))
			continue
		}
		out[k] = str
	}
	if len(msgs) > 0 {
		return nil, &apiError{status: http.StatusBadRequest, msgs: msgs}
	}
	return out, nil
}

func (s *Service) unknownProps(body map[string]any, known ...string) *apiError {
	var msgs []map[string]any
	for k := range body {
		if strings.HasPrefix(k, "@") {
			continue
		}
		found := false
		for _, x := range known {
			found = found || x == k
		}
		if !found {
			msgs = append(msgs, relate(s.regs.message("PropertyUnknown", k), "#/"+k))
		}
	}
	if len(msgs) > 0 {
		return &apiError{status: http.StatusBadRequest, msgs: msgs}
	}
	return nil
}

func (s *Service) created(w http.ResponseWriter, u string) {
	t := s.state()
	w.Header().Set("Location", u)
	if res, ok := t.res[u]; ok {
		s.writeCached(w, http.StatusCreated, res)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Service) createAccount(w http.ResponseWriter, body map[string]any) {
	if err := s.unknownProps(body, "UserName", "Password", "RoleId", "Enabled", "AccountTypes"); err != nil {
		s.writeError(w, err)
		return
	}
	req, aerr := s.required(body, "UserName", "Password", "RoleId")
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	enabled := true
	if v, ok := body["Enabled"]; ok {
		b, ok := v.(bool)
		if !ok {
			s.writeError(w, s.errorf(http.StatusBadRequest, "PropertyValueTypeError", "", "Enabled"))
			return
		}
		enabled = b
	}
	if !auth.Role(req["RoleId"]).Valid() {
		s.writeError(w, s.errorf(http.StatusBadRequest, "PropertyValueNotInList", req["RoleId"], "RoleId"))
		return
	}
	a, err := s.o.Auth.Create(req["UserName"], req["Password"], auth.Role(req["RoleId"]), enabled)
	if err != nil {
		s.writeError(w, s.accountError(err))
		return
	}
	s.created(w, uriAccts+"/"+a.ID)
}

// login serves POST SessionService/Sessions: 201, Location and
// X-Auth-Token.
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		if err := s.noQuery(r); err != nil {
			s.writeError(w, err)
			return
		}
	}
	body, aerr := s.readBody(r, false)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	if err := s.unknownProps(body, "UserName", "Password", "Context"); err != nil {
		s.writeError(w, err)
		return
	}
	req, aerr := s.required(body, "UserName", "Password")
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	sess, tok, err := s.o.Auth.Login(req["UserName"], req["Password"], ip)
	if err != nil {
		if errors.Is(err, auth.ErrTooManySessions) {
			s.writeError(w, s.errorf(http.StatusServiceUnavailable, "SessionLimitExceeded"))
			return
		}
		s.authError(w, r, http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Auth-Token", tok)
	s.created(w, uriSess+"/"+sess.ID)
}

func stringList(v any) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	for _, e := range a {
		s, ok := e.(string)
		if !ok || len(s) > maxStringLen {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func (s *Service) createSubscription(w http.ResponseWriter, body map[string]any) {
	if err := s.unknownProps(body, "Destination", "Protocol", "Context", "RegistryPrefixes", "MessageIds",
		"OriginResources", "ResourceTypes", "EventFormatType", "SubscriptionType", "HttpHeaders", "VerifyCertificate", "DeliveryRetryPolicy"); err != nil {
		s.writeError(w, err)
		return
	}
	req, aerr := s.required(body, "Destination", "Protocol")
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	bad := func(k string) {
		js, _ := json.Marshal(body[k])
		s.writeError(w, &apiError{status: http.StatusBadRequest, msgs: []map[string]any{relate(s.regs.message("PropertyValueTypeError", string(js), k), "#/"+k)}})
	}
	notInList := func(k string) {
		js, _ := json.Marshal(body[k])
		s.writeError(w, &apiError{status: http.StatusBadRequest, msgs: []map[string]any{relate(s.regs.message("PropertyValueNotInList", string(js), k), "#/"+k)}})
	}
	if req["Protocol"] != "Redfish" {
		notInList("Protocol")
		return
	}
	u, err := url.Parse(req["Destination"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s.writeError(w, &apiError{status: http.StatusBadRequest, msgs: []map[string]any{relate(s.regs.message("PropertyValueFormatError", req["Destination"], "Destination"), "#/Destination")}})
		return
	}
	v := subscriptionView{Destination: req["Destination"], VerifyCertificate: true, headers: map[string]string{}}
	for k, e := range body {
		switch k {
		case "Context":
			str, ok := e.(string)
			if !ok || len(str) > maxStringLen {
				bad(k)
				return
			}
			v.Context = str
		case "RegistryPrefixes", "MessageIds", "ResourceTypes":
			l, ok := stringList(e)
			if !ok {
				bad(k)
				return
			}
			switch k {
			case "RegistryPrefixes":
				v.RegistryPrefixes = l
			case "MessageIds":
				v.MessageIds = l
			default:
				v.ResourceTypes = l
			}
		case "OriginResources":
			a, ok := e.([]any)
			if !ok {
				bad(k)
				return
			}
			for _, x := range a {
				m, ok := x.(map[string]any)
				id, ok2 := m["@odata.id"].(string)
				if !ok || !ok2 || !strings.HasPrefix(id, root) {
					bad(k)
					return
				}
				v.OriginResources = append(v.OriginResources, normalize(id))
			}
		case "EventFormatType":
			if e != "Event" {
				notInList(k)
				return
			}
		case "SubscriptionType":
			if e != "RedfishEvent" {
				notInList(k)
				return
			}
		case "DeliveryRetryPolicy":
			if e != "RetryForever" {
				notInList(k)
				return
			}
		case "VerifyCertificate":
			b, ok := e.(bool)
			if !ok {
				bad(k)
				return
			}
			v.VerifyCertificate = b
		case "HttpHeaders":
			a, ok := e.([]any)
			if !ok {
				bad(k)
				return
			}
			for _, x := range a {
				m, ok := x.(map[string]any)
				if !ok {
					bad(k)
					return
				}
				for hk, hv := range m {
					str, ok := hv.(string)
					if !ok || len(str) > maxStringLen || len(hk) > 64 {
						bad(k)
						return
					}
					v.headers[http.CanonicalHeaderKey(hk)] = str
				}
			}
		}
	}
	s.evMu.Lock()
	if len(s.subs) >= maxSubscriptions {
		s.evMu.Unlock()
		s.writeError(w, s.errorf(http.StatusServiceUnavailable, "EventSubscriptionLimitExceeded"))
		return
	}
	v.ID = strconv.Itoa(s.nextSub)
	s.nextSub++
	s.startSubLocked(v)
	s.saveEventStateLocked()
	s.evMu.Unlock()
	s.bump()
	s.created(w, uriSubs+"/"+v.ID)
}

// submitTestEvent serves EventService.SubmitTestEvent: the event goes to
// SSE streams and subscriptions only, never to the board's event log.
func (s *Service) submitTestEvent(w http.ResponseWriter, r *http.Request) {
	body, aerr := s.readBody(r, true)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	known := []string{"EventGroupId", "EventId", "EventTimestamp", "EventType", "Message", "MessageArgs", "MessageId", "MessageSeverity", "OriginOfCondition", "Severity"}
	var msgs []map[string]any
	for k := range body {
		found := false
		for _, x := range known {
			found = found || x == k
		}
		if !found {
			msgs = append(msgs, s.regs.message("ActionParameterUnknown", "SubmitTestEvent", k))
		}
	}
	if len(msgs) > 0 {
		s.writeError(w, &apiError{status: http.StatusBadRequest, msgs: msgs})
		return
	}
	ev := events.Event{Time: time.Now(), MessageID: "ResourceEvent.1.4.TestMessage", Message: "Test message."}
	str := func(k string) (string, bool) {
		v, ok := body[k]
		if !ok {
			return "", true
		}
		x, ok := v.(string)
		return x, ok && len(x) <= maxStringLen
	}
	for _, k := range []string{"MessageId", "Message", "OriginOfCondition", "MessageSeverity", "Severity", "EventTimestamp", "EventId", "EventGroupId", "EventType"} {
		v, ok := str(k)
		if !ok {
			js, _ := json.Marshal(body[k])
			s.writeError(w, s.errorf(http.StatusBadRequest, "ActionParameterValueTypeError", string(js), k, "SubmitTestEvent"))
			return
		}
		if v == "" {
			continue
		}
		switch k {
		case "MessageId":
			ev.MessageID = v
		case "Message":
			ev.Message = v
		case "OriginOfCondition":
			ev.Origin = normalize(v)
		case "EventTimestamp":
			if tm, err := time.Parse(time.RFC3339, v); err == nil {
				ev.Time = tm
			}
		}
	}
	if v, ok := body["MessageArgs"]; ok {
		l, ok := stringList(v)
		if !ok {
			s.writeError(w, s.errorf(http.StatusBadRequest, "ActionParameterValueTypeError", "", "MessageArgs", "SubmitTestEvent"))
			return
		}
		ev.MessageArgs = l
	}
	rec := s.recordOf(ev)
	if sev, _ := str("MessageSeverity"); sev == "OK" || sev == "Warning" || sev == "Critical" {
		rec.rec["MessageSeverity"], rec.rec["Severity"] = sev, sev
	}
	if m, _ := str("Message"); m != "" {
		rec.rec["Message"] = m
	}
	s.fanout(rec)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) runAction(w http.ResponseWriter, r *http.Request, a Action, acct auth.Account) {
	if !acct.Has(a.Priv) {
		s.authError(w, r, http.StatusForbidden)
		return
	}
	body, aerr := s.readBody(r, true)
	if aerr != nil {
		s.writeError(w, aerr)
		return
	}
	if err := a.Do(r.Context(), body); err != nil {
		if errors.Is(err, ErrBadRequest) {
			e := s.errorf(http.StatusBadRequest, "GeneralError")
			e.msgs[0]["Message"] = err.Error()
			s.writeError(w, e)
			return
		}
		s.log.Error("action failed", "uri", r.URL.Path, "err", err)
		e := s.errorf(http.StatusInternalServerError, "InternalError")
		s.writeError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
