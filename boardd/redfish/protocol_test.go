package redfish_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/redfish"
	"podos.dev/podos/boardd/redfish/redfishtest"
	"podos.dev/podos/boardd/snapshot"
)

// messageIDs lists the MessageIds of an error body's @Message.ExtendedInfo.
func messageIDs(t testing.TB, r redfishtest.Response) []string {
	t.Helper()
	e, ok := r.JSON["error"].(map[string]any)
	if !ok {
		t.Fatalf("no Redfish error body (status %d): %s", r.Status, r.Body)
	}
	info, _ := e["@Message.ExtendedInfo"].([]any)
	var ids []string
	for _, i := range info {
		m, _ := i.(map[string]any)
		id, _ := m["MessageId"].(string)
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		t.Fatalf("empty @Message.ExtendedInfo: %s", r.Body)
	}
	return ids
}

func hasMessage(ids []string, key string) bool {
	for _, id := range ids {
		if strings.HasSuffix(id, "."+key) {
			return true
		}
	}
	return false
}

const viewerPW = "viewer-pw-1"

func withViewer(t *testing.T, srv *redfishtest.Server) {
	t.Helper()
	if r := srv.AsAdmin(t, "POST", "/redfish/v1/AccountService/Accounts", map[string]any{"UserName": "viewer", "Password": viewerPW, "RoleId": "ReadOnly"}); r.Status != http.StatusCreated {
		t.Fatalf("create viewer: %d %s", r.Status, r.Body)
	}
	if r := srv.AsAdmin(t, "POST", "/redfish/v1/AccountService/Accounts", map[string]any{"UserName": "oper", "Password": "operator-pw", "RoleId": "Operator"}); r.Status != http.StatusCreated {
		t.Fatalf("create operator: %d %s", r.Status, r.Body)
	}
}

func TestRequests(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	withViewer(t, srv)
	chassis := "/redfish/v1/Chassis/blade1"
	acct := func(name string) string {
		for _, a := range srv.Auth.Accounts() {
			if a.UserName == name {
				return "/redfish/v1/AccountService/Accounts/" + a.ID
			}
		}
		t.Fatalf("no account %s", name)
		return ""
	}
	cases := []struct {
		name, user, pw, method, path string
		body                         any
		hdr                          []string
		status                       int
		msg                          string // Base message key expected in the error body
	}{
		{"root is public", "", "", "GET", "/redfish/v1", nil, nil, 200, ""},
		{"root with slash", "", "", "GET", "/redfish/v1/", nil, nil, 200, ""},
		{"version document", "", "", "GET", "/redfish", nil, nil, 200, ""},
		{"metadata is public", "", "", "GET", "/redfish/v1/$metadata", nil, nil, 200, ""},
		{"odata is public", "", "", "GET", "/redfish/v1/odata", nil, nil, 200, ""},
		{"chassis needs credentials", "", "", "GET", chassis, nil, nil, 401, "NoValidSession"},
		{"bad password", "admin", "wrong-password", "GET", chassis, nil, nil, 401, "NoValidSession"},
		{"bad token", "", "", "GET", chassis, nil, []string{"X-Auth-Token", "nope"}, 401, "NoValidSession"},
		{"unknown resource", "admin", "", "GET", "/redfish/v1/Nothing", nil, nil, 404, "ResourceNotFound"},
		{"outside redfish", "admin", "", "GET", "/other", nil, nil, 404, "ResourceNotFound"},
		{"legacy Power not served", "admin", "", "GET", chassis + "/Power", nil, nil, 404, "ResourceNotFound"},
		{"legacy Thermal not served", "admin", "", "GET", chassis + "/Thermal", nil, nil, 404, "ResourceNotFound"},
		{"readonly reads", "viewer", viewerPW, "GET", chassis + "/Sensors", nil, nil, 200, ""},
		{"readonly cannot patch", "viewer", viewerPW, "PATCH", "/redfish/v1/SessionService", map[string]any{"SessionTimeout": 600}, nil, 403, "InsufficientPrivilege"},
		{"readonly cannot post", "viewer", viewerPW, "POST", "/redfish/v1/AccountService/Accounts", map[string]any{"UserName": "x", "Password": "xxxxxxxx", "RoleId": "ReadOnly"}, nil, 403, "InsufficientPrivilege"},
		{"readonly cannot subscribe", "viewer", viewerPW, "POST", "/redfish/v1/EventService/Subscriptions", map[string]any{"Destination": "http://127.0.0.1:9/", "Protocol": "Redfish"}, nil, 403, "InsufficientPrivilege"},
		{"operator cannot manage users", "oper", "operator-pw", "POST", "/redfish/v1/AccountService/Accounts", map[string]any{"UserName": "x", "Password": "xxxxxxxx", "RoleId": "ReadOnly"}, nil, 403, "InsufficientPrivilege"},
		{"operator cannot configure manager", "oper", "operator-pw", "PATCH", "/redfish/v1/EventService", map[string]any{"ServiceEnabled": true}, nil, 403, "InsufficientPrivilege"},
		{"readonly cannot change own role", "viewer", viewerPW, "PATCH", "@viewer", map[string]any{"RoleId": "Administrator"}, nil, 403, "InsufficientPrivilege"},
		{"readonly cannot change another's password", "viewer", viewerPW, "PATCH", "@admin", map[string]any{"Password": "another-pw"}, nil, 403, "InsufficientPrivilege"},
		{"malformed JSON", "admin", "", "PATCH", "/redfish/v1/SessionService", "{\"SessionTimeout\": ", nil, 400, "MalformedJSON"},
		{"not an object", "admin", "", "PATCH", "/redfish/v1/SessionService", "[1,2]", nil, 400, "MalformedJSON"},
		{"empty body", "admin", "", "PATCH", "/redfish/v1/SessionService", "", nil, 400, "EmptyJSON"},
		{"wrong type", "admin", "", "PATCH", "/redfish/v1/SessionService", map[string]any{"SessionTimeout": "long"}, nil, 400, "PropertyValueTypeError"},
		{"fractional integer", "admin", "", "PATCH", "/redfish/v1/SessionService", map[string]any{"SessionTimeout": 60.5}, nil, 400, "PropertyValueTypeError"},
		{"out of range", "admin", "", "PATCH", "/redfish/v1/SessionService", map[string]any{"SessionTimeout": 5}, nil, 400, "PropertyValueOutOfRange"},
		{"read-only property", "admin", "", "PATCH", "/redfish/v1/SessionService", map[string]any{"Id": "x"}, nil, 400, "PropertyNotWritable"},
		{"unknown property", "admin", "", "PATCH", "/redfish/v1/SessionService", map[string]any{"Frobnicate": 1}, nil, 400, "PropertyUnknown"},
		{"bad enum", "admin", "", "PATCH", "@viewer", map[string]any{"RoleId": "Root"}, nil, 400, "PropertyValueNotInList"},
		{"short password", "admin", "", "PATCH", "@viewer", map[string]any{"Password": "short"}, nil, 400, "PropertyValueFormatError"},
		{"wrong content type", "admin", "", "PATCH", "/redfish/v1/SessionService", "SessionTimeout=60", []string{"Content-Type", "text/plain"}, 415, "HeaderInvalid"},
		{"chassis is read-only", "admin", "", "PATCH", chassis, map[string]any{"AssetTag": "x"}, nil, 405, "OperationNotAllowed"},
		{"no PUT", "admin", "", "PUT", "/redfish/v1/SessionService", map[string]any{}, nil, 405, "OperationNotAllowed"},
		{"no DELETE on a sensor", "admin", "", "DELETE", chassis + "/Sensors/20-0-01", nil, nil, 405, "OperationNotAllowed"},
		{"OData-Version 4.0", "admin", "", "GET", chassis, nil, []string{"OData-Version", "4.0"}, 200, ""},
		{"OData-Version 3.0", "admin", "", "GET", chassis, nil, []string{"OData-Version", "3.0"}, 412, "HeaderInvalid"},
		{"If-Match mismatch", "admin", "", "PATCH", "/redfish/v1/SessionService", map[string]any{"SessionTimeout": 600}, []string{"If-Match", `W/"0000"`}, 412, "PreconditionFailed"},
		{"If-Match mismatch on DELETE", "admin", "", "DELETE", "@viewer", nil, []string{"If-Match", `"nope"`}, 412, "PreconditionFailed"},
		{"$top not a number", "admin", "", "GET", chassis + "/Sensors?$top=x", nil, nil, 400, "QueryParameterValueFormatError"},
		{"$skip negative", "admin", "", "GET", chassis + "/Sensors?$skip=-1", nil, nil, 400, "QueryParameterValueFormatError"},
		{"$top on a singleton", "admin", "", "GET", chassis + "?$top=1", nil, nil, 400, "QueryNotSupportedOnResource"},
		{"$filter unsupported", "admin", "", "GET", chassis + "/Sensors?$filter=Id%20eq%20'x'", nil, nil, 400, "QueryNotSupported"},
		{"unknown $ parameter", "admin", "", "GET", chassis + "?$bogus=1", nil, nil, 400, "QueryNotSupported"},
		{"excerpt unsupported", "admin", "", "GET", chassis + "?excerpt", nil, nil, 400, "QueryNotSupported"},
		{"bad $expand", "admin", "", "GET", chassis + "?$expand=Sensors", nil, nil, 400, "QueryParameterValueFormatError"},
		{"$expand too deep", "admin", "", "GET", chassis + "?$expand=*($levels=9)", nil, nil, 400, "QueryParameterOutOfRange"},
		{"bad $select", "admin", "", "GET", chassis + "?$select=Name,,", nil, nil, 400, "QueryParameterValueFormatError"},
		{"duplicate parameter", "admin", "", "GET", chassis + "/Sensors?$top=1&$top=2", nil, nil, 400, "QueryParameterValueFormatError"},
		{"only with others", "admin", "", "GET", "/redfish/v1/Chassis?only&$top=1", nil, nil, 400, "QueryCombinationInvalid"},
		{"bad escape", "admin", "", "GET", chassis + "?$select=%zz", nil, nil, 400, "QueryParameterValueFormatError"},
		{"other parameters ignored", "admin", "", "GET", chassis + "?foo=bar", nil, nil, 200, ""},
		{"login with bad password", "", "", "POST", "/redfish/v1/SessionService/Sessions", map[string]any{"UserName": "admin", "Password": "nope-nope"}, nil, 401, "NoValidSession"},
		{"login missing password", "", "", "POST", "/redfish/v1/SessionService/Sessions", map[string]any{"UserName": "admin"}, nil, 400, "PropertyMissing"},
		{"account exists", "admin", "", "POST", "/redfish/v1/AccountService/Accounts", map[string]any{"UserName": "viewer", "Password": "xxxxxxxx", "RoleId": "ReadOnly"}, nil, 409, "ResourceAlreadyExists"},
		{"account missing role", "admin", "", "POST", "/redfish/v1/AccountService/Accounts", map[string]any{"UserName": "y", "Password": "xxxxxxxx"}, nil, 400, "PropertyMissing"},
		{"subscription bad protocol", "admin", "", "POST", "/redfish/v1/EventService/Subscriptions", map[string]any{"Destination": "http://127.0.0.1:9/", "Protocol": "SNMPv2c"}, nil, 400, "PropertyValueNotInList"},
		{"subscription bad destination", "admin", "", "POST", "/redfish/v1/EventService/Subscriptions", map[string]any{"Destination": "ftp://x", "Protocol": "Redfish"}, nil, 400, "PropertyValueFormatError"},
		{"last admin cannot go", "admin", "", "DELETE", "@admin", nil, nil, 409, "ResourceCannotBeDeleted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pw := c.pw
			if c.user == "admin" && pw == "" {
				pw = srv.AdminPassword
			}
			path := c.path
			if strings.HasPrefix(path, "@") {
				path = acct(path[1:])
			}
			r := srv.Do(t, c.method, path, c.user, pw, c.body, c.hdr...)
			if r.Status != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.method, path, r.Status, c.status, r.Body)
			}
			if c.status >= 400 {
				if ids := messageIDs(t, r); !hasMessage(ids, c.msg) {
					t.Fatalf("messages %v, want %s", ids, c.msg)
				}
			}
			if c.status == 405 && r.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
			if c.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

func sensorByName(t *testing.T, srv *redfishtest.Server, name string) map[string]any {
	t.Helper()
	for _, s := range srv.Store.Load().Sensors {
		if s.Def.Name == name {
			r := srv.AsAdmin(t, "GET", "/redfish/v1/Chassis/blade1/Sensors/"+s.Def.ID, nil)
			if r.Status != 200 {
				t.Fatalf("GET sensor %s: %d", name, r.Status)
			}
			return r.JSON
		}
	}
	t.Fatalf("no sensor %s in the snapshot", name)
	return nil
}

func TestSensorsFromSnapshot(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	coll := srv.AsAdmin(t, "GET", "/redfish/v1/Chassis/blade1/Sensors", nil)
	if n := coll.JSON["Members@odata.count"]; n != float64(len(srv.Store.Load().Sensors)) || n == float64(0) {
		t.Fatalf("Sensors count %v, snapshot has %d", n, len(srv.Store.Load().Sensors))
	}
	vin := sensorByName(t, srv, "PSU_VIN")
	if vin["Reading"] != 24.0 || vin["ReadingUnits"] != "V" || vin["ReadingType"] != "Voltage" || vin["Name"] != "PSU_VIN" {
		t.Errorf("PSU_VIN: %v", vin)
	}
	th := vin["Thresholds"].(map[string]any)
	for k, want := range map[string]float64{"LowerFatal": 18, "LowerCritical": 20, "LowerCaution": 21, "UpperCaution": 26, "UpperCritical": 27, "UpperFatal": 28} {
		if got := th[k].(map[string]any)["Reading"]; got != want {
			t.Errorf("PSU_VIN %s = %v, want %v", k, got, want)
		}
	}
	oil := sensorByName(t, srv, "OIL_TEMP")
	if got := oil["Thresholds"].(map[string]any)["UpperCaution"].(map[string]any)["Reading"]; got != 50.0 {
		t.Errorf("OIL_TEMP UpperCaution %v, want the board config's 50", got)
	}
	if st := oil["Status"].(map[string]any); st["Health"] != "OK" || st["State"] != "Enabled" {
		t.Errorf("OIL_TEMP status %v", st)
	}
	m := srv.AsAdmin(t, "GET", "/redfish/v1/Chassis/blade1/PowerSubsystem/PowerSupplies/DCDC/Metrics", nil).JSON
	in := m["InputVoltage"].(map[string]any)
	if in["Reading"] != 24.0 || !strings.HasPrefix(in["DataSourceUri"].(string), "/redfish/v1/Chassis/blade1/Sensors/") {
		t.Errorf("InputVoltage %v", in)
	}
	if m["InputPowerWatts"].(map[string]any)["Reading"] != 240.0 || m["InputCurrentAmps"].(map[string]any)["Reading"] != 10.0 {
		t.Errorf("input metrics %v", m)
	}
	if n := m["RailVoltage@odata.count"]; n != float64(5) {
		t.Errorf("RailVoltage count %v (PSU_VOUT and DCDC1-4)", n)
	}
	pumps := srv.AsAdmin(t, "GET", "/redfish/v1/ThermalEquipment/ImmersionUnits/1/Pumps", nil).JSON
	if pumps["Members@odata.count"] != float64(2) {
		t.Errorf("pumps %v", pumps)
	}
	leaks := srv.AsAdmin(t, "GET", "/redfish/v1/ThermalEquipment/ImmersionUnits/1/LeakDetection/LeakDetectors", nil).JSON
	if leaks["Members@odata.count"] != float64(1) {
		t.Errorf("leak detectors %v", leaks)
	}

	// A new snapshot (a leak, a hotter oil) changes readings, health and ETags.
	etag := coll.Header.Get("ETag")
	oilETag := srv.AsAdmin(t, "GET", oil["@odata.id"].(string), nil).Header.Get("ETag")
	srv.Store.Swap(redfishtest.Snapshot(srv.Config, 2, time.Now(), map[string]uint16{"OIL_TEMP": 120, "LEAK": 0x0002}))
	oil2 := sensorByName(t, srv, "OIL_TEMP")
	if oil2["Reading"] != 60.0 || oil2["Status"].(map[string]any)["Health"] != "Warning" {
		t.Errorf("hot oil: %v", oil2)
	}
	if srv.AsAdmin(t, "GET", oil["@odata.id"].(string), nil).Header.Get("ETag") == oilETag {
		t.Error("the sensor's ETag did not change with its reading")
	}
	if srv.AsAdmin(t, "GET", "/redfish/v1/Chassis/blade1/Sensors", nil).Header.Get("ETag") != etag {
		t.Error("the Sensors collection's ETag changed though its members did not")
	}
	lj := srv.AsAdmin(t, "GET", "/redfish/v1/ThermalEquipment/ImmersionUnits/1/LeakDetection", nil).JSON
	if lj["Status"].(map[string]any)["Health"] != "Critical" {
		t.Errorf("leak: %v", lj)
	}
	ch := srv.AsAdmin(t, "GET", "/redfish/v1/Chassis/blade1", nil).JSON
	if ch["Status"].(map[string]any)["HealthRollup"] != "Critical" {
		t.Errorf("chassis rollup after a leak: %v", ch["Status"])
	}
}

func TestQueriesAndETags(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	sensors := "/redfish/v1/Chassis/blade1/Sensors"
	all := srv.AsAdmin(t, "GET", sensors, nil).JSON["Members"].([]any)
	page := srv.AsAdmin(t, "GET", sensors+"?$skip=1&$top=2", nil)
	ms := page.JSON["Members"].([]any)
	if len(ms) != 2 || ms[0].(map[string]any)["@odata.id"] != all[1].(map[string]any)["@odata.id"] {
		t.Fatalf("$skip=1&$top=2: %s", page.Body)
	}
	if page.JSON["Members@odata.nextLink"] != sensors+"?$skip=3&$top=2" || page.JSON["Members@odata.count"] != float64(len(all)) {
		t.Fatalf("paging annotations: %s", page.Body)
	}
	sel := srv.AsAdmin(t, "GET", "/redfish/v1/Chassis/blade1?$select=Name,Status/Health", nil).JSON
	if sel["Name"] != "Blade blade1" || sel["Id"] != nil || sel["@odata.id"] == nil || len(sel["Status"].(map[string]any)) != 1 {
		t.Fatalf("$select: %v", sel)
	}
	exp := srv.AsAdmin(t, "GET", sensors+"?$expand=.", nil).JSON
	first := exp["Members"].([]any)[0].(map[string]any)
	if first["@odata.type"] != "#Sensor.v1_12_0.Sensor" {
		t.Fatalf("$expand=. did not expand members: %v", first)
	}
	only := srv.AsAdmin(t, "GET", "/redfish/v1/Chassis?only", nil).JSON
	if only["@odata.type"] != "#Chassis.v1_28_0.Chassis" {
		t.Fatalf("only: %v", only)
	}
	// The cache is untouched by queries.
	if again := srv.AsAdmin(t, "GET", sensors, nil).JSON["Members"].([]any); len(again) != len(all) {
		t.Fatal("a query changed the cached collection")
	}
	r := srv.AsAdmin(t, "GET", "/redfish/v1/SessionService", nil)
	if nm := srv.AsAdmin(t, "GET", "/redfish/v1/SessionService", nil, "If-None-Match", r.Header.Get("ETag")); nm.Status != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", nm.Status)
	}
	ok := srv.AsAdmin(t, "PATCH", "/redfish/v1/SessionService", map[string]any{"SessionTimeout": 600}, "If-Match", r.Header.Get("ETag"))
	if ok.Status != 200 || ok.JSON["SessionTimeout"] != float64(600) {
		t.Fatalf("PATCH with If-Match: %d %s", ok.Status, ok.Body)
	}
	if srv.Auth.SessionTimeout() != 10*time.Minute {
		t.Fatal("SessionTimeout not applied")
	}
	stale := srv.AsAdmin(t, "PATCH", "/redfish/v1/SessionService", map[string]any{"SessionTimeout": 700}, "If-Match", r.Header.Get("ETag"))
	if stale.Status != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with a stale ETag: %d", stale.Status)
	}
	// A rejected PATCH changes nothing, even its valid properties.
	bad := srv.AsAdmin(t, "PATCH", "/redfish/v1/EventService", map[string]any{"DeliveryRetryAttempts": 5, "Bogus": true})
	if bad.Status != 400 || srv.AsAdmin(t, "GET", "/redfish/v1/EventService", nil).JSON["DeliveryRetryAttempts"] != float64(3) {
		t.Fatalf("partial PATCH applied: %d", bad.Status)
	}
	meta := srv.Do(t, "GET", "/redfish/v1/$metadata", "", "", nil)
	for _, want := range []string{`Uri="http://redfish.dmtf.org/schemas/v1/Sensor_v1.xml"`, `Namespace="Sensor.v1_12_0"`, `Namespace="CoolingUnit.v1_5_0"`, `Extends="ServiceRoot.v1_20_0.ServiceContainer"`} {
		if !strings.Contains(string(meta.Body), want) {
			t.Errorf("$metadata lacks %s", want)
		}
	}
	if r := srv.Do(t, "HEAD", "/redfish/v1/Chassis", srv.Admin, srv.AdminPassword, nil); r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("HEAD: %d %q", r.Status, r.Body)
	}
}

func TestSessionsAndAccounts(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	withViewer(t, srv)
	login := srv.Do(t, "POST", "/redfish/v1/SessionService/Sessions", "", "", map[string]any{"UserName": "viewer", "Password": viewerPW})
	tok, loc := login.Header.Get("X-Auth-Token"), login.Header.Get("Location")
	if login.Status != 201 || tok == "" || !strings.HasPrefix(loc, "/redfish/v1/SessionService/Sessions/") || login.JSON["UserName"] != "viewer" {
		t.Fatalf("login: %d %v %s", login.Status, login.Header, login.Body)
	}
	if r := srv.Do(t, "GET", "/redfish/v1/Chassis", "", "", nil, "X-Auth-Token", tok); r.Status != 200 {
		t.Fatalf("GET with token: %d", r.Status)
	}
	// A ReadOnly user may end its own session (ConfigureSelf) but not others'.
	admin := srv.Do(t, "POST", "/redfish/v1/SessionService/Sessions", "", "", map[string]any{"UserName": "admin", "Password": srv.AdminPassword})
	if r := srv.Do(t, "DELETE", admin.Header.Get("Location"), "", "", nil, "X-Auth-Token", tok); r.Status != 403 {
		t.Fatalf("viewer deleting admin's session: %d", r.Status)
	}
	if r := srv.Do(t, "DELETE", loc, "", "", nil, "X-Auth-Token", tok); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := srv.Do(t, "GET", "/redfish/v1/Chassis", "", "", nil, "X-Auth-Token", tok); r.Status != 401 {
		t.Fatalf("GET after logout: %d", r.Status)
	}
	// ConfigureSelf: the viewer changes its own password.
	var viewer string
	for _, a := range srv.Auth.Accounts() {
		if a.UserName == "viewer" {
			viewer = "/redfish/v1/AccountService/Accounts/" + a.ID
		}
	}
	if r := srv.Do(t, "PATCH", viewer, "viewer", viewerPW, map[string]any{"Password": "new-viewer-pw"}); r.Status != 200 || r.JSON["Password"] != nil {
		t.Fatalf("own password change: %d %s", r.Status, r.Body)
	}
	if r := srv.Do(t, "GET", "/redfish/v1/Chassis", "viewer", viewerPW, nil); r.Status != 401 {
		t.Fatalf("old password still works: %d", r.Status)
	}
	if r := srv.Do(t, "GET", "/redfish/v1/Chassis", "viewer", "new-viewer-pw", nil); r.Status != 200 {
		t.Fatalf("new password: %d", r.Status)
	}
	// The administrator disables, then deletes the account.
	if r := srv.AsAdmin(t, "PATCH", viewer, map[string]any{"Enabled": false}); r.Status != 200 || r.JSON["Enabled"] != false {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	if r := srv.Do(t, "GET", "/redfish/v1/Chassis", "viewer", "new-viewer-pw", nil); r.Status != 401 {
		t.Fatalf("disabled account still works: %d", r.Status)
	}
	if r := srv.AsAdmin(t, "DELETE", viewer, nil); r.Status != 204 {
		t.Fatalf("delete: %d", r.Status)
	}
	if r := srv.AsAdmin(t, "GET", viewer, nil); r.Status != 404 {
		t.Fatalf("deleted account: %d", r.Status)
	}
	roles := srv.AsAdmin(t, "GET", "/redfish/v1/AccountService/Roles/Operator", nil).JSON
	if p := roles["AssignedPrivileges"].([]any); len(p) != 3 {
		t.Fatalf("Operator privileges %v", p)
	}
}

// TestEvents: SSE with replay and filter, a push subscription with
// retries, and SubmitTestEvent.
func TestEvents(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	v := newValidator(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var hits atomic.Int32
	got := make(chan []byte, 16)
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if hits.Add(1) <= 2 { // fail twice: the service must retry
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		got <- b
		w.WriteHeader(http.StatusNoContent)
	}))
	defer dest.Close()
	if r := srv.AsAdmin(t, "PATCH", "/redfish/v1/EventService", map[string]any{"DeliveryRetryIntervalSeconds": 1, "DeliveryRetryAttempts": 3}); r.Status != 200 {
		t.Fatalf("PATCH EventService: %d %s", r.Status, r.Body)
	}
	sub := srv.AsAdmin(t, "POST", "/redfish/v1/EventService/Subscriptions", map[string]any{
		"Destination": dest.URL + "/events", "Protocol": "Redfish", "Context": "ctx-1",
		"RegistryPrefixes": []any{"ResourceEvent"},
	})
	if sub.Status != 201 {
		t.Fatalf("subscribe: %d %s", sub.Status, sub.Body)
	}

	stream, err := redfishtest.SSE(ctx, srv.Client, srv.URL+"/redfish/v1/EventService/SSE", srv.Admin, srv.AdminPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	filtered, err := redfishtest.SSE(ctx, srv.Client, srv.URL+"/redfish/v1/EventService/SSE?$filter=MessageId%20eq%20'ResourceEvent.1.4.ResourceStatusChangedCritical'", srv.Admin, srv.AdminPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	// Both streams are registered once a test event reaches them.
	waitFor(t, "SSE streams registered", func() bool {
		srv.AsAdmin(t, "POST", "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent", map[string]any{"MessageId": "ResourceEvent.1.4.TestMessage"})
		select {
		case <-stream:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	origin := "/redfish/v1/Chassis/blade1/Sensors/20-0-20"
	warn, err := srv.Emitter.Emit(events.Event{Kind: events.KindSensor, Source: "20-0-20", Severity: health.Warning, To: health.Warning,
		Message: "LEAK unknown", MessageID: "ResourceEvent.1.4.ResourceStatusChangedWarning", MessageArgs: []string{"LEAK", "Warning"}, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	crit, err := srv.Emitter.Emit(events.Event{Kind: events.KindSensor, Source: "20-0-20", Severity: health.Critical, To: health.Critical,
		Message: "LEAK detected", MessageID: "ResourceEvent.1.4.ResourceStatusChangedCritical", MessageArgs: []string{"LEAK", "Critical"}, Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	ev, rec, err := redfishtest.WaitEvent(stream, "ResourceStatusChangedCritical", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	validateEvent(t, v, ev.Data)
	if ev.ID != redfishtest.SeqString(crit.Seq) || rec["Message"] != "The health of resource 'LEAK' has changed to Critical." ||
		rec["MessageSeverity"] != "Critical" || rec["OriginOfCondition"].(map[string]any)["@odata.id"] != origin || rec["EventTimestamp"] == nil {
		t.Fatalf("SSE event id %s: %v", ev.ID, rec)
	}
	fev, _, err := redfishtest.WaitEvent(filtered, "ResourceStatusChangedCritical", 30*time.Second)
	if err != nil || fev.ID != redfishtest.SeqString(crit.Seq) {
		t.Fatalf("filtered stream got %v (%v), want only the Critical event", fev.ID, err)
	}
	// A workload action renders from podos's own registry with boardd's
	// sentence, at the severity of the condition that caused it.
	if _, err := srv.Emitter.Emit(events.Event{Kind: events.KindWorkload, Source: "demo", Severity: health.Critical, To: health.Critical,
		Message: "demo frozen: Power is Critical", MessageID: "Podos.1.0.WorkloadAction", MessageArgs: []string{"demo", "demo frozen: Power is Critical"},
		Origin: "/podos/v1/workloads/demo"}); err != nil {
		t.Fatal(err)
	}
	wev, wrec, err := redfishtest.WaitEvent(stream, "WorkloadAction", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	validateEvent(t, v, wev.Data)
	if wrec["Message"] != "Workload 'demo': demo frozen: Power is Critical" || wrec["MessageSeverity"] != "Critical" {
		t.Fatalf("workload event: %v", wrec)
	}
	// Replay: a client that saw the warning gets the critical one again.
	replay, err := redfishtest.SSE(ctx, srv.Client, srv.URL+"/redfish/v1/EventService/SSE", srv.Admin, srv.AdminPassword, redfishtest.SeqString(warn.Seq))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case rev := <-replay: // the first event replayed is the one after Last-Event-ID
		if rev.ID != redfishtest.SeqString(crit.Seq) {
			t.Fatalf("replay after %d started at %s", warn.Seq, rev.ID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no replay")
	}
	// Push: delivered after two failed attempts, with the context.
	var body []byte
	for body == nil {
		select {
		case b := <-got:
			var p map[string]any
			json.Unmarshal(b, &p)
			if p["Context"] == "ctx-1" {
				body = b
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("no push delivery (%d attempts)", hits.Load())
		}
	}
	validateEvent(t, v, body)
	if hits.Load() < 3 {
		t.Fatalf("delivered without retrying: %d attempts", hits.Load())
	}
	// Unsubscribe.
	if r := srv.AsAdmin(t, "DELETE", sub.Header.Get("Location"), nil); r.Status != 204 {
		t.Fatalf("unsubscribe: %d", r.Status)
	}
	// The log shows both events as LogEntries.
	waitFor(t, "event log entries", func() bool {
		r := srv.AsAdmin(t, "GET", "/redfish/v1/Managers/boardd/LogServices/EventLog/Entries/"+redfishtest.SeqString(crit.Seq), nil)
		return r.Status == 200 && r.JSON["Severity"] == "Critical" && r.JSON["MessageId"] == "ResourceEvent.1.4.ResourceStatusChangedCritical"
	})
}

// fabricTree is a minimal extra tree, as engineer F's fabric tree plugs in.
type fabricTree struct{ reset atomic.Int32 }

func (f *fabricTree) Resources(s *snapshot.Snapshot) map[string]map[string]any {
	return map[string]map[string]any{
		"/redfish/v1/Fabrics": {"@odata.id": "/redfish/v1/Fabrics", "@odata.type": "#FabricCollection.FabricCollection", "Name": "Fabrics",
			"Members": []any{map[string]any{"@odata.id": "/redfish/v1/Fabrics/pcie"}}, "Members@odata.count": 1},
		"/redfish/v1/Fabrics/pcie": {"@odata.id": "/redfish/v1/Fabrics/pcie", "@odata.type": "#Fabric.v1_4_0.Fabric", "Id": "pcie", "Name": "PCIe fabric",
			"FabricType": "PCIe", "Actions": map[string]any{"Oem": map[string]any{}}},
	}
}

func (f *fabricTree) Actions() map[string]redfish.Action {
	return map[string]redfish.Action{"/redfish/v1/Fabrics/pcie/Actions/Oem/Podos.Reset": {Priv: auth.ConfigureComponents, Do: func(ctx context.Context, body map[string]any) error {
		if _, ok := body["Port"]; !ok {
			return redfish.ErrBadRequest
		}
		f.reset.Add(1)
		return nil
	}}}
}

func TestExtraTreesAndMounts(t *testing.T) {
	ft := &fabricTree{}
	mount := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := auth.AccountFrom(r.Context())
		if !ok {
			t.Error("mount called without an account")
		}
		io.WriteString(w, a.UserName)
	})
	srv := redfishtest.Start(t, redfishtest.Options{Extra: []redfish.Tree{ft}, Mounts: map[string]http.Handler{"/podos/v1/": mount}})
	withViewer(t, srv)
	if root := srv.AsAdmin(t, "GET", "/redfish/v1", nil).JSON; root["Fabrics"] == nil {
		t.Fatalf("root does not link Fabrics: %v", root)
	}
	if r := srv.AsAdmin(t, "GET", "/redfish/v1/Fabrics/pcie", nil); r.Status != 200 || r.JSON["@odata.etag"] == nil {
		t.Fatalf("extra resource: %d %s", r.Status, r.Body)
	}
	action := "/redfish/v1/Fabrics/pcie/Actions/Oem/Podos.Reset"
	if r := srv.Do(t, "POST", action, "viewer", viewerPW, map[string]any{"Port": 1}); r.Status != 403 {
		t.Fatalf("viewer action: %d", r.Status)
	}
	if r := srv.Do(t, "POST", action, "oper", "operator-pw", map[string]any{}); r.Status != 400 {
		t.Fatalf("bad action body: %d", r.Status)
	}
	if r := srv.Do(t, "POST", action, "oper", "operator-pw", map[string]any{"Port": 1}); r.Status != 204 || ft.reset.Load() != 1 {
		t.Fatalf("action: %d, ran %d times", r.Status, ft.reset.Load())
	}
	if r := srv.Do(t, "GET", "/podos/v1/status", "", "", nil); r.Status != 401 {
		t.Fatalf("mount without credentials: %d", r.Status)
	}
	if r := srv.Do(t, "GET", "/podos/v1/status", "viewer", viewerPW, nil); r.Status != 200 || string(r.Body) != "viewer" {
		t.Fatalf("mount: %d %s", r.Status, r.Body)
	}
}

// TestSubscriptionsSurviveRestart: a new service on the same state dir
// has the subscriptions and settings of the old one.
func TestSubscriptionsSurviveRestart(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	if r := srv.AsAdmin(t, "PATCH", "/redfish/v1/EventService", map[string]any{"DeliveryRetryAttempts": 7}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	sub := srv.AsAdmin(t, "POST", "/redfish/v1/EventService/Subscriptions", map[string]any{
		"Destination": "https://127.0.0.1:9/x", "Protocol": "Redfish", "Context": "keep-me", "MessageIds": []any{"ResourceEvent.1.4.ResourceStatusChangedCritical"},
		"HttpHeaders": []any{map[string]any{"Authorization": "Bearer secret"}},
	})
	if sub.Status != 201 || sub.JSON["HttpHeaders"] == nil || strings.Contains(string(sub.Body), "secret") {
		t.Fatalf("subscribe: %d %s", sub.Status, sub.Body)
	}
	svc2, err := redfish.New(redfish.Options{Store: srv.Store, Auth: srv.Auth, Config: srv.Config, StateDir: srv.StateDir + "/state"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc2.Close()
	h := svc2.Handler()
	get := func(p string) map[string]any {
		req := httptest.NewRequest("GET", p, nil)
		req.SetBasicAuth(srv.Admin, srv.AdminPassword)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 200 {
			t.Fatalf("GET %s: %d %s", p, w.Code, w.Body)
		}
		return m
	}
	d := get(sub.Header.Get("Location"))
	if d["Context"] != "keep-me" || d["Destination"] != "https://127.0.0.1:9/x" || len(d["MessageIds"].([]any)) != 1 {
		t.Fatalf("restored subscription: %v", d)
	}
	if get("/redfish/v1/EventService")["DeliveryRetryAttempts"] != float64(7) {
		t.Fatal("event service settings not restored")
	}
}

// TestEmptySnapshot: before the first collection the service still
// answers, from the config or with defaults.
func TestEmptySnapshot(t *testing.T) {
	srv := redfishtest.Start(t, redfishtest.Options{})
	for _, cfg := range []bool{true, false} {
		o := redfish.Options{Store: snapshot.NewStore(), Auth: srv.Auth}
		want := "/redfish/v1/Chassis/board"
		if cfg {
			o.Config = srv.Config
			want = "/redfish/v1/Chassis/blade1"
		}
		svc, err := redfish.New(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"/redfish/v1", want, want + "/Sensors", want + "/PowerSubsystem/PowerSupplies/DCDC/Metrics", "/redfish/v1/ThermalEquipment/ImmersionUnits/1/LeakDetection"} {
			req := httptest.NewRequest("GET", p, nil)
			req.SetBasicAuth(srv.Admin, srv.AdminPassword)
			w := httptest.NewRecorder()
			svc.Handler().ServeHTTP(w, req)
			if w.Code != 200 {
				t.Errorf("config %v: GET %s: %d %s", cfg, p, w.Code, w.Body)
			}
		}
		svc.Close()
	}
}
