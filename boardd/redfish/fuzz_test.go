package redfish_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"podos.dev/podos/boardd/redfish/redfishtest"
)

// FuzzHandler throws arbitrary requests (path, query, method, headers,
// body; as the administrator or not) at the handler: it must never panic
// and never answer a 5xx, and every error must carry a Redfish error body.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		path, query, method, headers, body string
		admin                              bool
	}{
		{"/redfish/v1", "", "GET", "", "", false},
		{"/redfish/v1/Chassis/blade1/Sensors", "$top=2&$skip=1", "GET", "", "", true},
		{"/redfish/v1/Chassis/blade1", "$select=Name,Status/Health&$expand=*($levels=2)", "GET", "", "", true},
		{"/redfish/v1/Chassis", "only", "GET", "OData-Version: 4.0", "", true},
		{"/redfish/v1/SessionService", "", "PATCH", "If-Match: W/\"x\"", `{"SessionTimeout": 600}`, true},
		{"/redfish/v1/SessionService", "", "PATCH", "", `{"SessionTimeout": "x", "Id": 1, "Foo": null}`, true},
		{"/redfish/v1/SessionService/Sessions", "", "POST", "", `{"UserName":"admin","Password":"x"}`, false},
		{"/redfish/v1/AccountService/Accounts", "", "POST", "", `{"UserName":"u1","Password":"password1","RoleId":"Operator"}`, true},
		{"/redfish/v1/AccountService/Accounts/1", "", "DELETE", "", "", true},
		{"/redfish/v1/EventService/Subscriptions", "", "POST", "", `{"Destination":"http://127.0.0.1:9/x","Protocol":"Redfish","HttpHeaders":[{"X":"y"}]}`, true},
		{"/redfish/v1/EventService/Actions/EventService.SubmitTestEvent", "", "POST", "", `{"MessageId":"Base.1.22.1.Success","MessageArgs":[1]}`, true},
		{"/redfish/v1/EventService/SSE", "$filter=MessageId eq 'x' or OriginResource eq '/redfish/v1'", "GET", "Last-Event-ID: 3", "", true},
		{"/redfish/v1/$metadata", "$top=1", "GET", "", "", false},
		{"/redfish/v1/Managers/boardd/LogServices/EventLog/Entries", "$skip=99999999999999999999", "GET", "", "", true},
		{"/redfish//v1/../v1/Chassis/", "%zz", "PUT", "Content-Type: text/plain", "{{{", true},
		{"/podos/v1/x", "", "GET", "X-Auth-Token: abc", "", false},
	}
	for _, s := range seeds {
		f.Add(s.path, s.query, s.method, s.headers, []byte(s.body), s.admin)
	}
	srv := redfishtest.Start(f, redfishtest.Options{Mounts: map[string]http.Handler{"/podos/v1/": http.NotFoundHandler()}})
	h := srv.Service.Handler()
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(srv.Admin+":"+srv.AdminPassword))
	done, cancel := context.WithCancel(context.Background())
	cancel() // an SSE stream ends at once instead of waiting for events
	f.Fuzz(func(t *testing.T, path, query, method, headers string, body []byte, admin bool) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		u := &url.URL{Path: path, RawQuery: query}
		if strings.ContainsAny(path, "?#") || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return // not a request an HTTP server would parse
		}
		req, err := http.NewRequestWithContext(done, method, "https://127.0.0.1"+u.RequestURI(), bytes.NewReader(body))
		if err != nil {
			return
		}
		for _, line := range strings.Split(headers, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && k != "" && !strings.ContainsAny(k, " \t\r") {
				req.Header.Add(k, strings.TrimSpace(v))
			}
		}
		if admin {
			req.Header.Set("Authorization", basic)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 500 {
			// Resource limits (sessions, subscriptions) and a disabled
			// event service are 503 by Redfish; nothing else is 5xx.
			b := rec.Body.String()
			if res.StatusCode != 503 || !(strings.Contains(b, "LimitExceeded") || strings.Contains(b, "ServiceDisabled")) {
				t.Fatalf("%s %s: %d %s", method, u.RequestURI(), res.StatusCode, b)
			}
		}
		if res.StatusCode >= 400 && !strings.HasPrefix(path, "/podos/") {
			var e struct {
				Error struct {
					Code string           `json:"code"`
					Info []map[string]any `json:"@Message.ExtendedInfo"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || len(e.Error.Info) == 0 {
				t.Fatalf("%s %s: %d without a Redfish error body: %s", method, u.RequestURI(), res.StatusCode, rec.Body.Bytes())
			}
		}
	})
}
