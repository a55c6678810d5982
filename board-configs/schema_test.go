package boardconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatalf("compile schema.json: %v", err)
	}
	return sch
}

// schemaValidate validates YAML against the schema, as an editor would:
// YAML to its JSON data model (merge keys resolved), then the schema.
func schemaValidate(sch *jsonschema.Schema, data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err
	}
	j, err := json.Marshal(v) // fails on non-string keys and NaN, which JSON cannot hold
	if err != nil {
		return fmt.Errorf("not representable as JSON: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func TestSchemaShippedConfigs(t *testing.T) {
	sch := compileSchema(t)
	for _, f := range shipped(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemaValidate(sch, data); err != nil {
			t.Errorf("%s does not match schema.json:\n%v", f, err)
		}
	}
}

// The schema and the loader agree: on configs both accept, on configs
// both reject, and on the documented checks only the loader can make.
func TestSchemaAgreesWithLoader(t *testing.T) {
	sch := compileSchema(t)
	const sensor = "sensors:\n  - {name: X, role: temp}\n"
	good := []string{
		minimal,
		minimal + "sensors: []\npolicy: {hold: 1m30s}\n",
		minimal + "bmc: {url: \"ipmi+lan://admin:pw@10.0.0.2:623\", timeout: 500ms, retries: 0}\n",
		minimal + "boot: {network: {mode: static, address: 10.0.0.5/24, gateway: 10.0.0.1}}\n",
		minimal + sensor + "policy: {rules: [{name: r, when: {sensor: X, state: Warning}, action: throttle, throttle_percent: 10}]}\n",
		minimal + "fabric: {switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 0, expect: nvme, speed_gts: 2.5, width: 4}]}]}\n",
		minimal + "workloads: [{name: w, image: \"oci-archive:/a b.tar\", env: {A_1: x}, cpu: 0.25}]\n",
		minimal + "emulation: {memory_mb: 0, pcie: [{id: a, driver: e1000e, props: {x-speed: \"8\"}}]}\n",
		minimal + "sensors: [{name: F, role: fuse, sim: {number: 1, sensor_type: 8, event_type: 3, initial: 0x7fff}}]\n",
	}
	bad := map[string]string{
		"unknown top field":          minimal + "colour: blue\n",
		"unknown nested field":       minimal + "sensors: [{name: X, role: temp, foo: 1}]\n",
		"missing apiVersion":         "board: {id: b}\n",
		"wrong apiVersion":           "apiVersion: v1\nboard: {id: b}\n",
		"missing board":              "apiVersion: podos.dev/v1\n",
		"board id upper case":        "apiVersion: podos.dev/v1\nboard: {id: Blade}\n",
		"board slot type":            "apiVersion: podos.dev/v1\nboard: {id: b, slot: one}\n",
		"board slot range":           "apiVersion: podos.dev/v1\nboard: {id: b, slot: 256}\n",
		"bmc scheme":                 minimal + "bmc: {url: \"telnet://x\"}\n",
		"bmc retries":                minimal + "bmc: {retries: 11}\n",
		"bmc timeout type":           minimal + "bmc: {timeout: 5}\n",
		"poll interval word":         minimal + "poll: {interval: fast}\n",
		"poll interval negative":     minimal + "poll: {interval: -1s}\n",
		"poll debounce":              minimal + "poll: {debounce: 101}\n",
		"sensor role":                minimal + "sensors: [{name: X, role: heater}]\n",
		"sensor no name":             minimal + "sensors: [{role: temp}]\n",
		"sensor no role":             minimal + "sensors: [{name: X}]\n",
		"sensor name type":           minimal + "sensors: [{name: 7, role: temp}]\n",
		"sensor name spaces":         minimal + "sensors: [{name: \" X\", role: temp}]\n",
		"sensor required type":       minimal + "sensors: [{name: X, role: temp, required: yes}]\n",
		"thresholds on a fuse":       minimal + "sensors: [{name: X, role: fuse, thresholds: {upper_critical: 1}}]\n",
		"negative hysteresis":        minimal + "sensors: [{name: X, role: temp, thresholds: {hysteresis: -1}}]\n",
		"threshold type":             minimal + "sensors: [{name: X, role: temp, thresholds: {upper_critical: hot}}]\n",
		"sensor debounce":            minimal + "sensors: [{name: X, role: temp, debounce: -1}]\n",
		"sim m":                      minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1, m: 600}}]\n",
		"sim r_exp":                  minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1, m: 1, r_exp: -9}}]\n",
		"sim b_exp":                  minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1, m: 1, b_exp: 8}}]\n",
		"sim event type":             minimal + "sensors: [{name: X, role: other, sim: {sensor_type: 1, event_type: 0x20}}]\n",
		"sim no sensor type":         minimal + "sensors: [{name: X, role: other, sim: {event_type: 3}}]\n",
		"sim discrete thresholds":    minimal + "sensors: [{name: X, role: fuse, sim: {sensor_type: 8, event_type: 3, raw_thresholds: {uc: 1}}}]\n",
		"sim discrete hysteresis":    minimal + "sensors: [{name: X, role: fuse, sim: {sensor_type: 8, event_type: 3, raw_hysteresis: 1}}]\n",
		"sim discrete initial":       minimal + "sensors: [{name: X, role: fuse, sim: {sensor_type: 8, event_type: 3, initial: 0x8000}}]\n",
		"sim fuse as threshold":      minimal + "sensors: [{name: X, role: fuse, sim: {sensor_type: 8, event_type: 1, unit: 4, m: 1}}]\n",
		"sim temp as discrete":       minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 3}}]\n",
		"sim threshold without m":    minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1}}]\n",
		"sim threshold without unit": minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, m: 1}}]\n",
		"sim initial byte":           minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1, m: 1, initial: 256}}]\n",
		"sim unit":                   minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 93, m: 1}}]\n",
		"sim raw threshold key":      minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1, m: 1, raw_thresholds: {hot: 1}}}]\n",
		"sim raw threshold value":    minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1, m: 1, raw_thresholds: {uc: 256}}}]\n",
		"rule two selectors":         minimal + sensor + "policy: {rules: [{name: r, when: {sensor: X, role: temp, state: Warning}, action: shed}]}\n",
		"rule no selector":           minimal + "policy: {rules: [{name: r, when: {state: Warning}, action: shed}]}\n",
		"rule state":                 minimal + "policy: {rules: [{name: r, when: {subsystem: Power, state: OK}, action: shed}]}\n",
		"rule subsystem":             minimal + "policy: {rules: [{name: r, when: {subsystem: Plumbing, state: Warning}, action: shed}]}\n",
		"rule action":                minimal + "policy: {rules: [{name: r, when: {subsystem: Power, state: Warning}, action: explode}]}\n",
		"rule no name":               minimal + "policy: {rules: [{when: {subsystem: Power, state: Warning}, action: shed}]}\n",
		"throttle without percent":   minimal + "policy: {rules: [{name: r, when: {subsystem: Power, state: Warning}, action: throttle}]}\n",
		"throttle over 100":          minimal + "policy: {rules: [{name: r, when: {subsystem: Power, state: Warning}, action: throttle, throttle_percent: 101}]}\n",
		"percent on shed":            minimal + "policy: {rules: [{name: r, when: {subsystem: Power, state: Warning}, action: shed, throttle_percent: 5}]}\n",
		"hold word":                  minimal + "policy: {hold: long}\n",
		"fabric no switches":         minimal + "fabric: {id: pcie}\n",
		"fabric id":                  minimal + "fabric: {id: PCIe, switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 1, expect: nvme}]}]}\n",
		"root port":                  minimal + "fabric: {switches: [{name: s, root_port: \"00:1c.0\", ports: [{port: 1, expect: nvme}]}]}\n",
		"switch no ports":            minimal + "fabric: {switches: [{name: s, root_port: \"0000:00:1c.0\", ports: []}]}\n",
		"port expect":                minimal + "fabric: {switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 1, expect: gpu}]}]}\n",
		"port speed":                 minimal + "fabric: {switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 1, expect: nvme, speed_gts: 7}]}]}\n",
		"port width":                 minimal + "fabric: {switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 1, expect: nvme, width: 3}]}]}\n",
		"empty port with width":      minimal + "fabric: {switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 1, expect: empty, width: 1}]}]}\n",
		"aer negative":               minimal + "fabric: {aer_limit_per_minute: -1, switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 1, expect: nvme}]}]}\n",
		"workload name":              minimal + "workloads: [{name: Demo, image: x}]\n",
		"workload no image":          minimal + "workloads: [{name: demo}]\n",
		"workload empty image":       minimal + "workloads: [{name: demo, image: \"\"}]\n",
		"workload relative archive":  minimal + "workloads: [{name: demo, image: \"oci-archive:demo.tar\"}]\n",
		"workload image spaces":      minimal + "workloads: [{name: demo, image: \"my image\"}]\n",
		"workload priority":          minimal + "workloads: [{name: demo, image: x, priority: urgent}]\n",
		"workload restart":           minimal + "workloads: [{name: demo, image: x, restart: sometimes}]\n",
		"workload cpu":               minimal + "workloads: [{name: demo, image: x, cpu: -1}]\n",
		"workload memory":            minimal + "workloads: [{name: demo, image: x, memory_mb: -1}]\n",
		"workload env key":           minimal + "workloads: [{name: demo, image: x, env: {A-B: x}}]\n",
		"workload env value":         minimal + "workloads: [{name: demo, image: x, env: {A: 1}}]\n",
		"workload args":              minimal + "workloads: [{name: demo, image: x, args: a}]\n",
		"module path":                minimal + "boot: {modules: [a/b.ko]}\n",
		"network mode":               minimal + "boot: {network: {mode: ppp}}\n",
		"static without address":     minimal + "boot: {network: {mode: static}}\n",
		"dhcp with address":          minimal + "boot: {network: {mode: dhcp, address: 10.0.0.5/24}}\n",
		"default with gateway":       minimal + "boot: {network: {gateway: 10.0.0.1}}\n",
		"interface":                  minimal + "boot: {network: {interface: \"eth0:1\"}}\n",
		"persistent":                 minimal + "boot: {persistent: vda}\n",
		"watchdog":                   minimal + "boot: {watchdog: watchdog0}\n",
		"emulation memory":           minimal + "emulation: {memory_mb: 64}\n",
		"emulation cpus":             minimal + "emulation: {cpus: 65}\n",
		"emulation disk":             minimal + "emulation: {disk_mb: -1}\n",
		"pcie id":                    minimal + "emulation: {pcie: [{id: 1x, driver: e1000e}]}\n",
		"pcie no driver":             minimal + "emulation: {pcie: [{id: a}]}\n",
		"pcie prop bus":              minimal + "emulation: {pcie: [{id: a, driver: e1000e, props: {bus: x}}]}\n",
		"pcie prop comma":            minimal + "emulation: {pcie: [{id: a, driver: e1000e, props: {x: \"1,2\"}}]}\n",
		"pcie prop type":             minimal + "emulation: {pcie: [{id: a, driver: e1000e, props: {x: 1}}]}\n",
		"not a mapping":              "- a\n",
		"non-string key":             minimal + "workloads: [{name: w, image: i, env: {1: x}}]\n",
		"nan":                        minimal + "sensors: [{name: X, role: temp, thresholds: {upper_critical: .nan}}]\n",
	}
	// Checks only the loader makes: orderings, uniqueness, references,
	// ranges of durations and addresses. The schema accepts these.
	goOnly := map[string]string{
		"threshold order":     minimal + "sensors: [{name: X, role: temp, thresholds: {upper_non_critical: 5, upper_critical: 4}}]\n",
		"raw threshold order": minimal + "sensors: [{name: X, role: temp, sim: {sensor_type: 1, event_type: 1, unit: 1, m: 1, raw_thresholds: {unc: 5, uc: 4}}}]\n",
		"duplicate sensor":    minimal + "sensors: [{name: X, role: temp}, {name: X, role: fan}]\n",
		"duplicate number":    minimal + "sensors: [{name: X, role: fuse, sim: {number: 1, sensor_type: 8, event_type: 3}}, {name: Y, role: fuse, sim: {number: 1, sensor_type: 8, event_type: 3}}]\n",
		"rule unknown sensor": minimal + "policy: {rules: [{name: r, when: {sensor: NOPE, state: Warning}, action: shed}]}\n",
		"duplicate rule":      minimal + "policy: {rules: [{name: r, when: {subsystem: Power, state: Warning}, action: shed}, {name: r, when: {subsystem: Power, state: Critical}, action: shed}]}\n",
		"duplicate workload":  minimal + "workloads: [{name: w, image: x}, {name: w, image: y}]\n",
		"duplicate port":      minimal + "fabric: {switches: [{name: s, root_port: \"0000:00:1c.0\", ports: [{port: 1, expect: nvme}, {port: 1, expect: nvme}]}]}\n",
		"pcie bus reference":  minimal + "emulation: {pcie: [{id: a, driver: e1000e, bus: nowhere}]}\n",
		"poll interval short": minimal + "poll: {interval: 1ms}\n",
		"bmc timeout long":    minimal + "bmc: {timeout: 2m}\n",
		"bad CIDR":            minimal + "boot: {network: {mode: static, address: 10.0.0.300/24}}\n",
		"kcs without path":    minimal + "bmc: {url: \"ipmi+kcs://\"}\n",
	}
	for i, y := range good {
		if _, err := Parse("good.yaml", []byte(y)); err != nil {
			t.Errorf("good[%d]: loader rejects:\n%v\n%s", i, err, y)
		}
		if err := schemaValidate(sch, []byte(y)); err != nil {
			t.Errorf("good[%d]: schema rejects:\n%v\n%s", i, err, y)
		}
	}
	for name, y := range bad {
		_, lerr := Parse("bad.yaml", []byte(y))
		serr := schemaValidate(sch, []byte(y))
		if lerr == nil {
			t.Errorf("%s: the loader accepts\n%s", name, y)
		}
		if serr == nil {
			t.Errorf("%s: the schema accepts\n%s", name, y)
		}
	}
	for name, y := range goOnly {
		if _, err := Parse("bad.yaml", []byte(y)); err == nil {
			t.Errorf("%s: the loader accepts\n%s", name, y)
		}
		if err := schemaValidate(sch, []byte(y)); err != nil {
			t.Errorf("%s: the schema now rejects it too (move it to bad): %v", name, err)
		}
	}
}

// The schema lists the same enumerations as the Go code.
func TestSchemaEnums(t *testing.T) {
	data, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	contains := func(def string, values []string) {
		raw := string(s.Defs[def])
		for _, v := range values {
			if !strings.Contains(raw, `"`+v+`"`) {
				t.Errorf("schema $defs/%s lacks %q", def, v)
			}
		}
	}
	roles := make([]string, len(Roles))
	for i, r := range Roles {
		roles[i] = string(r)
	}
	contains("sensor", roles)
	contains("rule", Subsystems)
	contains("rule", Actions)
	contains("rule", RuleStates)
	contains("workload", Priorities)
	contains("workload", Restarts)
	contains("fabric", PortExpects)
	contains("boot", NetworkModes)
}
