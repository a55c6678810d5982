package redfishschema

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
)

const sensor = `{"@odata.id":"/redfish/v1/Chassis/c/Sensors/t","@odata.type":"#Sensor.v1_12_0.Sensor",
"Id":"t","Name":"Inlet","ReadingType":"Temperature","Reading":21.5,"ReadingUnits":"Cel",
"Status":{"State":"Enabled","Health":"OK"}}`

func TestURI(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"#Sensor.v1_12_0.Sensor", Base + "Sensor.v1_12_0.json#/definitions/Sensor"},
		{"#SensorCollection.SensorCollection", Base + "SensorCollection.json#/definitions/SensorCollection"},
		{"#redfish-error.v1_0_2.RedfishError", Base + "redfish-error.v1_0_2.json#/definitions/RedfishError"},
	} {
		got, err := URI(c.in)
		if err != nil || got != c.want {
			t.Errorf("URI(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "#", "#Sensor", "#A.b.c.d", "#Sensor..Sensor", "#../x.y", "#a/b.c"} {
		if got, err := URI(bad); !errors.Is(err, ErrUnknownType) {
			t.Errorf("URI(%q) = %q, %v; want ErrUnknownType", bad, got, err)
		}
	}
}

func TestValidate(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var sensorMap map[string]any
	if err := json.Unmarshal([]byte(sensor), &sensorMap); err != nil {
		t.Fatal(err)
	}
	with := func(k string, x any) map[string]any {
		m := map[string]any{}
		for kk, vv := range sensorMap {
			m[kk] = vv
		}
		m[k] = x
		return m
	}
	for _, c := range []struct {
		name    string
		typ     string
		doc     any
		ok      bool
		unknown bool // error must wrap ErrUnknownType
	}{
		{"raw bytes", "#Sensor.v1_12_0.Sensor", []byte(sensor), true, false},
		{"RawMessage", "#Sensor.v1_12_0.Sensor", json.RawMessage(sensor), true, false},
		{"decoded map", "#Sensor.v1_12_0.Sensor", sensorMap, true, false},
		{"Go integers", "#Sensor.v1_12_0.Sensor", with("Reading", uint64(21)), true, false},
		{"bad enum", "#Sensor.v1_12_0.Sensor", with("ReadingType", "Bogus"), false, false},
		{"unknown property", "#Sensor.v1_12_0.Sensor", with("Unknown", 1), false, false},
		{"wrong JSON type", "#Sensor.v1_12_0.Sensor", with("Reading", "hot"), false, false},
		{"collection", "#SensorCollection.SensorCollection", map[string]any{
			"@odata.id": "/redfish/v1/Chassis/c/Sensors", "@odata.type": "#SensorCollection.SensorCollection",
			"Name": "Sensors", "Members": []any{map[string]any{"@odata.id": "/redfish/v1/Chassis/c/Sensors/t"}}, "Members@odata.count": 1,
		}, true, false},
		{"collection missing Members", "#SensorCollection.SensorCollection", map[string]any{
			"@odata.id": "/redfish/v1/Chassis/c/Sensors", "@odata.type": "#SensorCollection.SensorCollection", "Name": "Sensors",
		}, false, false},
		{"no such schema", "#Sensor.v9_9_9.Sensor", []byte(sensor), false, true},
		{"no such resource", "#Bogus.v1_0_0.Bogus", []byte(`{}`), false, true},
		{"malformed type", "Sensor", []byte(sensor), false, true},
		{"no such definition", "#Sensor.v1_12_0.Nothing", []byte(sensor), false, false},
		{"bad JSON", "#Sensor.v1_12_0.Sensor", []byte(`{"Id":`), false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := v.Validate(c.typ, c.doc)
			if (err == nil) != c.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, c.ok)
			}
			if c.unknown != errors.Is(err, ErrUnknownType) {
				t.Fatalf("Validate = %v, want ErrUnknownType=%v", err, c.unknown)
			}
		})
	}
	used := v.Used()
	for _, want := range []string{"Sensor.v1_12_0.json", "Resource.json", "odata-v4.json"} {
		if !slices.Contains(used, want) {
			t.Errorf("Used() = %v, missing %s", used, want)
		}
	}
}

// Schemas that reference Swordfish (absent from DMTF's bundle) compile
// through the permissive stubs, and a ServiceRoot carrying such a link
// validates; the odata.v4_0_5.json $id maps to odata-v4.json.
func TestSwordfishAndAliases(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"#Storage.v1_21_0.Storage", "#Drive.v1_22_0.Drive", "#ServiceRoot.v1_20_0.ServiceRoot", "#ComputerSystem.v1_27_0.ComputerSystem"} {
		if err := v.Check(typ); err != nil {
			t.Errorf("Check(%s): %v", typ, err)
		}
	}
	root := `{"@odata.id":"/redfish/v1","@odata.type":"#ServiceRoot.v1_20_0.ServiceRoot","Id":"RootService","Name":"Root",
"RedfishVersion":"1.20.0","StorageServices":{"@odata.id":"/redfish/v1/StorageServices"},"Links":{"Sessions":{"@odata.id":"/redfish/v1/SessionService/Sessions"}}}`
	if err := v.Validate("#ServiceRoot.v1_20_0.ServiceRoot", []byte(root)); err != nil {
		t.Errorf("ServiceRoot with a Swordfish link: %v", err)
	}
	l := &loader{fsys: embedded, used: map[string]bool{}}
	if _, err := l.Load(Base + "odata.v4_0_5.json"); err != nil {
		t.Errorf("odata.v4_0_5.json: %v", err)
	}
	for _, u := range []string{"https://example.com/x.json", Base + "../x.json", swordfishBase + "Nothing.json"} {
		if _, err := l.Load(u); err == nil {
			t.Errorf("Load(%s) succeeded", u)
		}
	}
}

// The validator is shared by parallel subtests in callers.
func TestConcurrent(t *testing.T) {
	v, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- v.Validate("#Sensor.v1_12_0.Sensor", []byte(sensor)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
