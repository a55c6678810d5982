package boardconfig

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shipped lists the board configs in this folder.
func shipped(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("shipped configs: %v %v", files, err)
	}
	return files
}

func TestShippedConfigsLoad(t *testing.T) {
	for _, f := range shipped(t) {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate after Load: %v", f, err)
		}
	}
}

func TestEmulatedRuggedPOD(t *testing.T) {
	c, err := Load("emulated-ruggedpod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Board.ID != "blade1" || c.Board.Slot != 1 || c.BMC.URL != "" {
		t.Errorf("board %+v bmc %+v", c.Board, c.BMC)
	}
	if c.Poll.Interval.Duration != time.Second || c.Poll.Debounce != 1 || c.Policy.Hold.Duration != 30*time.Second {
		t.Errorf("poll %+v hold %v", c.Poll, c.Policy.Hold)
	}
	if len(c.Sensors) < 18 {
		t.Errorf("%d sensors", len(c.Sensors))
	}
	// Every sensor is emulated; every threshold sensor has thresholds and
	// hysteresis, and its initial value is strictly inside them.
	for i := range c.Sensors {
		s := &c.Sensors[i]
		if s.Sim == nil {
			t.Errorf("%s has no sim block", s.Name)
			continue
		}
		if !s.Sim.IsThreshold() {
			if s.Sim.Initial&(1<<1) != 0 || s.Sim.Initial&1 == 0 {
				t.Errorf("%s: discrete initial 0x%x is not the healthy state (bit 0 only)", s.Name, s.Sim.Initial)
			}
			continue
		}
		if len(s.Sim.RawThresholds) == 0 || s.Sim.RawHysteresis == 0 {
			t.Errorf("%s: no raw thresholds or hysteresis", s.Name)
		}
		v := s.Sim.SimValue(uint8(s.Sim.Initial))
		for k, raw := range s.Sim.RawThresholds {
			th := s.Sim.SimValue(raw)
			if strings.HasPrefix(k, "l") && v <= th || strings.HasPrefix(k, "u") && v >= th {
				t.Errorf("%s: initial %g is not inside %s %g", s.Name, v, k, th)
			}
		}
	}
	// The conversions the comments promise.
	checks := []struct {
		sensor string
		raw    uint8
		want   float64
	}{
		{"PSU_VIN", 120, 24}, {"PSU_VIN", 100, 20}, {"PSU_PIN", 48, 240}, {"PSU_VOUT", 120, 12},
		{"OIL_TEMP", 80, 40}, {"INLET_TEMP", 44, 20}, {"INLET_TEMP", 200, -30}, {"INLET_TEMP", 220, -20},
		{"INLET_TEMP", 114, 55}, {"PUMP1", 100, 3000}, {"PUMP2", 20, 600}, {"FAN1", 80, 4000},
	}
	for _, ck := range checks {
		s := c.Sensor(ck.sensor)
		if s == nil {
			t.Errorf("no sensor %s", ck.sensor)
			continue
		}
		if got := s.Sim.SimValue(ck.raw); abs(got-ck.want) > 1e-9 {
			t.Errorf("%s raw %d = %g, want %g", ck.sensor, ck.raw, got, ck.want)
		}
	}
	// Merged (<<) sim blocks keep their own overrides.
	if d := c.Sensor("DCDC3"); d.Sim.Number != 0x08 || d.Sim.EntityInst != 3 || d.Sim.M != 10 {
		t.Errorf("DCDC3 sim %+v", d.Sim)
	}
	if pin := c.Sensor("PSU_PIN"); pin.Sim.SensorType != 0x03 || pin.Sim.Unit != 6 {
		t.Errorf("PSU_PIN must be Watts on a Current-type sensor: %+v", pin.Sim)
	}
	if c.Fabric == nil || c.Fabric.ID != "pcie" || len(c.Fabric.Switches) != 1 || len(c.Fabric.Switches[0].Ports) != 3 {
		t.Errorf("fabric %+v", c.Fabric)
	}
	if c.Emulation == nil || len(c.Emulation.PCIe) != 7 || c.Emulation.MemoryMB != 1024 {
		t.Errorf("emulation %+v", c.Emulation)
	}
	pri := map[string]string{}
	for _, w := range c.Workloads {
		pri[w.Name] = w.Priority
	}
	if pri["demo"] != "sheddable" || pri["sentinel"] != "critical" {
		t.Errorf("workloads %v", pri)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

const minimal = `apiVersion: podos.dev/v1
board:
  id: blade
`

func TestDefaults(t *testing.T) {
	c, err := Parse("min.yaml", []byte(minimal+`sensors:
  - name: PSU_VIN
    role: psu-input
  - name: AUX
    role: temp
    required: false
    debounce: 4
fabric:
  switches:
    - {name: sw0, root_port: "0000:00:1c.0", ports: [{port: 1, expect: nvme}]}
workloads:
  - {name: w, image: "busybox:latest"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Poll.Interval.Duration != time.Second || c.Poll.Debounce != 1 || c.BMC.Timeout.Duration != time.Second ||
		c.BMC.Retries != 3 || c.Policy.Hold.Duration != 30*time.Second || c.Fabric.ID != "pcie" ||
		c.Boot.Network.Interface != "eth0" || c.Boot.Network.Mode != "dhcp" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if !c.Sensors[0].IsRequired() || c.Sensors[0].Required == nil || c.Sensors[1].IsRequired() {
		t.Errorf("required: %v %v", c.Sensors[0].Required, c.Sensors[1].Required)
	}
	if c.SensorDebounce(&c.Sensors[0]) != 1 || c.SensorDebounce(&c.Sensors[1]) != 4 {
		t.Errorf("debounce %d %d", c.SensorDebounce(&c.Sensors[0]), c.SensorDebounce(&c.Sensors[1]))
	}
	if w := c.Workloads[0]; w.Priority != "normal" || w.Restart != "always" {
		t.Errorf("workload %+v", w)
	}
	if c.Sensor("AUX") != &c.Sensors[1] || c.Sensor("NOPE") != nil {
		t.Error("Sensor lookup")
	}
	var nilCfg *Config
	if nilCfg.Sensor("X") != nil || nilCfg.SensorDebounce(nil) != 1 {
		t.Error("nil config helpers")
	}
	if (&Sensor{}).IsRequired() != true {
		t.Error("a sensor is required by default")
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Board.ID != "board" || len(c.Sensors) != 0 || len(c.Policy.Rules) != 0 || c.Fabric != nil ||
		c.Poll.Interval.Duration != time.Second || c.APIVersion != APIVersion {
		t.Errorf("Default() = %+v", c)
	}
}

// errCase is a config and the exact errors Parse must report.
type errCase struct {
	name string
	yaml string
	want []string
}

func TestParseErrors(t *testing.T) {
	cases := []errCase{
		{"threshold order", minimal + `sensors:
  - {name: A, role: temp}
  - {name: B, role: temp}
  - {name: C, role: temp}
  - name: OIL_TEMP
    role: temp-oil
    thresholds:
      upper_non_critical: 30
      upper_critical: 28
      upper_fatal: 20
      lower_critical: 40
`, []string{
			"blade.yaml:11: sensors[3].thresholds.upper_non_critical: must be above lower_critical (30 <= 40)",
			"blade.yaml:12: sensors[3].thresholds.upper_critical: must be above upper_non_critical (28 <= 30)",
			"blade.yaml:13: sensors[3].thresholds.upper_fatal: must be above upper_critical (20 <= 28)",
		}},
		{"unknown fields", minimal + `  colour: blue
sensors:
  - name: X
    role: temp
    treshold: {}
`, []string{
			`blade.yaml:4: board.colour: unknown field "colour"`,
			`blade.yaml:8: sensors[0].treshold: unknown field "treshold"`,
		}},
		{"types", `apiVersion: podos.dev/v1
board: {id: b, slot: two}
poll: {interval: 5, debounce: 1.5}
sensors: {name: X}
workloads:
  - name: 7
    image: x
    cpu: lots
    env: [A]
`, []string{
			`blade.yaml:2: board.slot: must be an integer, got "two"`,
			`blade.yaml:3: poll.debounce: must be an integer, got number 1.5`,
			`blade.yaml:3: poll.interval: must be a duration such as "1s" or "500ms", got integer 5`,
			`blade.yaml:4: sensors: must be a list, got a mapping`,
			`blade.yaml:6: workloads[0].name: must be a string, got integer 7 (quote it)`,
			`blade.yaml:8: workloads[0].cpu: must be a number, got "lots"`,
			`blade.yaml:9: workloads[0].env: must be a mapping, got a list`,
		}},
		{"ranges", minimal + `sensors:
  - name: X
    role: temp
    sim: {number: 300, sensor_type: 1, event_type: 1, unit: 1, m: 600, r_exp: -9, initial: 20}
`, []string{
			`blade.yaml:7: sensors[0].sim.number: 300 is out of range 0..255`,
		}},
		{"sim fields", minimal + `sensors:
  - name: X
    role: temp
    sim: {number: 1, sensor_type: 1, event_type: 1, unit: 1, m: 600, r_exp: -9, b_exp: 8, b: -513, initial: 256,
          raw_thresholds: {unc: 100, uc: 90, zz: 1}}
  - name: F
    role: fuse
    sim: {number: 1, sensor_type: 8, event_type: 1, raw_hysteresis: 1}
  - name: L
    role: leak
    sim: {number: 2, sensor_type: 0xc0, event_type: 0x20, initial: 0x8000, raw_thresholds: {lc: 1}, raw_hysteresis: 2}
  - name: T
    role: temp
    sim: {number: 3, sensor_type: 0, event_type: 3, unit: 93}
`, []string{
			`blade.yaml:7: sensors[0].sim.b: must be between -512 and 511, got -513`,
			`blade.yaml:7: sensors[0].sim.b_exp: must be between -8 and 7, got 8`,
			`blade.yaml:7: sensors[0].sim.initial: a raw reading is one byte (0-255), got 256`,
			`blade.yaml:7: sensors[0].sim.m: must be between -512 and 511, got 600`,
			`blade.yaml:7: sensors[0].sim.r_exp: must be between -8 and 7, got -9`,
			`blade.yaml:8: sensors[0].sim.raw_thresholds.zz: unknown threshold "zz" (one of lnr, lc, lnc, unc, uc, unr)`,
			`blade.yaml:11: sensors[1].sim.event_type: a fuse sensor is discrete: event_type must not be 0x01 (threshold)`,
			`blade.yaml:11: sensors[1].sim.m: required for a threshold sensor (non-zero)`,
			`blade.yaml:11: sensors[1].sim.number: 1 is already used by sensors[0]`,
			`blade.yaml:11: sensors[1].sim.unit: required for a threshold sensor (e.g. 1 degrees C, 4 volts)`,
			`blade.yaml:14: sensors[2].sim.event_type: 0x20 is not an IPMI event/reading type (0x01 threshold, 0x02-0x0c generic, 0x6f sensor-specific, 0x70-0x7f OEM)`,
			`blade.yaml:14: sensors[2].sim.initial: a discrete state has 15 offsets (bits 0-14), got 0x8000`,
			`blade.yaml:14: sensors[2].sim.raw_hysteresis: only threshold sensors (event_type 0x01) have hysteresis`,
			`blade.yaml:14: sensors[2].sim.raw_thresholds: only threshold sensors (event_type 0x01) have thresholds`,
			`blade.yaml:17: sensors[3].sim.event_type: a temp sensor is a threshold sensor: event_type must be 0x01`,
			`blade.yaml:17: sensors[3].sim.sensor_type: required (an IPMI sensor type code, e.g. 0x01 temperature)`,
			`blade.yaml:17: sensors[3].sim.unit: 93 is not an IPMI unit code (0-92)`,
		}},
		{"sim threshold order", minimal + `sensors:
  - name: X
    role: temp
    sim: {number: 1, sensor_type: 1, event_type: 1, unit: 1, m: 5, r_exp: -1, signed: true,
          raw_thresholds: {lnr: 0xf0, lc: 0xe0, unc: 10, uc: 10}}
`, []string{
			`blade.yaml:8: sensors[0].sim.raw_thresholds.lc: must convert above lnr (-16 <= -8)`,
			`blade.yaml:8: sensors[0].sim.raw_thresholds.uc: must convert above unc (5 <= 5)`,
		}},
		{"sensors", minimal + `sensors:
  - name: X
    role: heater
  - name: X
    role: fuse
    debounce: -1
    thresholds: {hysteresis: -1}
  - name: " padded"
  - role: temp
`, []string{
			`blade.yaml:6: sensors[0].role: "heater" is not one of psu-input, psu-output, psu-status, fuse, temp-oil, temp-inlet, temp-cpu, temp, pump, fan, leak, other`,
			`blade.yaml:7: sensors[1].name: "X" is already used by sensors[0]`,
			`blade.yaml:9: sensors[1].debounce: must be between 1 and 100 (0 means the default), got -1`,
			`blade.yaml:10: sensors[1].thresholds: a fuse sensor is discrete: thresholds do not apply`,
			`blade.yaml:10: sensors[1].thresholds.hysteresis: must not be negative, got -1`,
			`blade.yaml:11: sensors[2].name: " padded" must be printable ASCII without leading or trailing spaces`,
			`blade.yaml:11: sensors[2].role: required (one of psu-input, psu-output, psu-status, fuse, temp-oil, temp-inlet, temp-cpu, temp, pump, fan, leak, other)`,
			`blade.yaml:12: sensors[3].name: required`,
		}},
		{"policy", minimal + `sensors: [{name: LEAK, role: leak}]
policy:
  hold: -1s
  rules:
    - name: a
      when: {subsystem: Power, role: leak, state: Critical}
      action: shed
      throttle_percent: 20
    - name: a
      when: {state: Bad}
      action: explode
    - name: t
      when: {sensor: NOPE, state: Warning}
      action: throttle
    - when: {subsystem: Plumbing, state: Warning}
    - name: ok
      when: {sensor: LEAK, state: Critical}
      action: throttle
      throttle_percent: 101
`, []string{
			`blade.yaml:6: policy.hold: must be between 0 and 24h, got -1s`,
			`blade.yaml:9: policy.rules[0].when: needs exactly one of subsystem, role or sensor (got 2)`,
			`blade.yaml:11: policy.rules[0].throttle_percent: only a throttle action takes a percentage`,
			`blade.yaml:12: policy.rules[1].name: "a" is already used by policy.rules[0]`,
			`blade.yaml:13: policy.rules[1].when: needs exactly one of subsystem, role or sensor (got 0)`,
			`blade.yaml:13: policy.rules[1].when.state: "Bad" is not one of Warning, Critical`,
			`blade.yaml:14: policy.rules[1].action: "explode" is not one of shed, stop, throttle, event`,
			`blade.yaml:15: policy.rules[2].throttle_percent: a throttle needs a percentage between 1 and 100, got 0`,
			`blade.yaml:16: policy.rules[2].when.sensor: "NOPE" is not a sensor of this config`,
			`blade.yaml:18: policy.rules[3].action: required (one of shed, stop, throttle, event)`,
			`blade.yaml:18: policy.rules[3].name: required`,
			`blade.yaml:18: policy.rules[3].when.subsystem: "Plumbing" is not one of Power, Thermal, Cooling, Fuses, Fabric, Other`,
			`blade.yaml:22: policy.rules[4].throttle_percent: a throttle needs a percentage between 1 and 100, got 101`,
		}},
		{"fabric", minimal + `fabric:
  id: PCIe
  aer_limit_per_minute: -1
  switches:
    - name: sw0
      root_port: 00:03.0
      ports:
        - {port: 1, expect: nvme, speed_gts: 7, width: 3}
        - {port: 1, expect: gpu}
        - {port: 2, expect: empty, width: 1}
    - name: sw0
      root_port: "0000:00:1c.0"
      ports: []
    - {name: sw2, root_port: "0000:00:1c.0", ports: [{port: 300}]}
`, []string{
			`blade.yaml:5: fabric.id: "PCIe" must be lower-case letters, digits and '-' (a DNS label, at most 63 characters)`,
			`blade.yaml:6: fabric.aer_limit_per_minute: must not be negative, got -1`,
			`blade.yaml:9: fabric.switches[0].root_port: "00:03.0" is not a PCI address (domain:bus:device.function, lower-case hex, e.g. 0000:00:03.0)`,
			`blade.yaml:11: fabric.switches[0].ports[0].speed_gts: 7 is not a PCIe link speed (2.5, 5, 8, 16, 32, 64 GT/s)`,
			`blade.yaml:11: fabric.switches[0].ports[0].width: 3 is not a PCIe link width (1, 2, 4, 8, 12, 16, 32)`,
			`blade.yaml:12: fabric.switches[0].ports[1].expect: "gpu" is not one of nvme, storage, ethernet, network, accelerator, empty`,
			`blade.yaml:12: fabric.switches[0].ports[1].port: port 1 is already described by fabric.switches[0].ports[0]`,
			`blade.yaml:13: fabric.switches[0].ports[2]: an empty port has no link speed or width`,
			`blade.yaml:14: fabric.switches[1].name: "sw0" is already used by fabric.switches[0]`,
			`blade.yaml:16: fabric.switches[1].ports: a switch needs at least one port`,
			`blade.yaml:17: fabric.switches[2].ports[0].expect: required (one of nvme, storage, ethernet, network, accelerator, empty)`,
			`blade.yaml:17: fabric.switches[2].ports[0].port: must be between 0 and 255, got 300`,
			`blade.yaml:17: fabric.switches[2].root_port: 0000:00:1c.0 is already used by fabric.switches[1]`,
		}},
		{"workloads", minimal + `workloads:
  - name: Demo_1
    image: oci-archive:demo.tar
    priority: urgent
    restart: sometimes
    cpu: -1
    memory_mb: -5
    env: {"A-B": x}
  - name: demo-1
    image: ""
  - name: demo-1
    image: "my image"
`, []string{
			`blade.yaml:5: workloads[0].name: "Demo_1" must be lower-case letters, digits and '-' (a DNS label, at most 63 characters)`,
			`blade.yaml:6: workloads[0].image: an oci-archive path must be absolute, got "demo.tar"`,
			`blade.yaml:7: workloads[0].priority: "urgent" is not one of critical, normal, sheddable`,
			`blade.yaml:8: workloads[0].restart: "sometimes" is not one of always, on-failure, never`,
			`blade.yaml:9: workloads[0].cpu: must be between 0 and 1024 cores, got -1`,
			`blade.yaml:10: workloads[0].memory_mb: must not be negative, got -5`,
			`blade.yaml:11: workloads[0].env.A-B: "A-B" is not an environment variable name`,
			`blade.yaml:13: workloads[1].image: required (oci-archive:/path or a registry reference)`,
			`blade.yaml:14: workloads[2].name: "demo-1" is already used by workloads[1]`,
			`blade.yaml:15: workloads[2].image: "my image" contains spaces`,
		}},
		{"boot and bmc", `apiVersion: podos.dev/v2
board: {id: "", slot: 300}
bmc: {url: "telnet://bmc", timeout: 2m, retries: 11}
poll: {interval: 1ms, debounce: 101}
boot:
  modules: [ok, bad/path.ko]
  network: {interface: "eth0:1", mode: static, gateway: 10.0.0.300}
  persistent: vda
  watchdog: watchdog0
`, []string{
			`blade.yaml:1: apiVersion: must be "podos.dev/v1", got "podos.dev/v2"`,
			`blade.yaml:2: board.id: required`,
			`blade.yaml:2: board.slot: must be between 0 and 255, got 300`,
			`blade.yaml:3: bmc.retries: must be between 0 and 10, got 11`,
			`blade.yaml:3: bmc.timeout: must be between 0 and 1m, got 2m0s`,
			`blade.yaml:3: bmc.url: scheme "telnet" is not one of ipmi+kcs, ipmi+lan, ipmi+lanplus, redfish+https, redfish+http`,
			`blade.yaml:4: poll.debounce: must be between 1 and 100 (0 means the default), got 101`,
			`blade.yaml:4: poll.interval: must be at least 10ms, got 1ms`,
			`blade.yaml:6: boot.modules[1]: "bad/path.ko" is not a module name (no path, no .ko)`,
			`blade.yaml:7: boot.network.address: static mode needs an address (CIDR, e.g. 10.0.0.5/24)`,
			`blade.yaml:7: boot.network.gateway: "10.0.0.300" is not an IP address`,
			`blade.yaml:7: boot.network.interface: "eth0:1" is not an interface name`,
			`blade.yaml:8: boot.persistent: "vda" must be a device path under /dev/`,
			`blade.yaml:9: boot.watchdog: "watchdog0" must be a device path under /dev/`,
		}},
		{"bmc urls and dhcp", minimal + `bmc: {url: "ipmi+kcs://"}
boot:
  network: {mode: dhcp, address: 10.0.0.5/24}
emulation:
  memory_mb: 64
  cpus: 65
  disk_mb: -1
  pcie:
    - {id: rp1, driver: pcie-root-port}
    - {id: rp1, driver: "", bus: nowhere, props: {"a,b": "1", bus: x}}
    - {id: 1x, driver: "e1000e,x"}
`, []string{
			`blade.yaml:4: bmc.url: ipmi+kcs needs a device path (ipmi+kcs:///dev/ipmi0)`,
			`blade.yaml:6: boot.network: address and gateway are for static mode only`,
			`blade.yaml:8: emulation.memory_mb: must be at least 128, got 64`,
			`blade.yaml:9: emulation.cpus: must be between 1 and 64, got 65`,
			`blade.yaml:10: emulation.disk_mb: must not be negative, got -1`,
			`blade.yaml:13: emulation.pcie[1].bus: "nowhere" is not the id of an earlier device`,
			`blade.yaml:13: emulation.pcie[1].driver: required (a QEMU device driver, e.g. e1000e)`,
			`blade.yaml:13: emulation.pcie[1].id: "rp1" is already used by emulation.pcie[0]`,
			`blade.yaml:13: emulation.pcie[1].props.a,b: QEMU property names and values must not contain ',', '=' or newlines`,
			`blade.yaml:13: emulation.pcie[1].props.bus: set bus as a field, not a property`,
			`blade.yaml:14: emulation.pcie[2].driver: "e1000e,x" is not a QEMU device driver name`,
			`blade.yaml:14: emulation.pcie[2].id: "1x" is not a QEMU id (a letter, then letters, digits, '_', '.', '-')`,
		}},
		{"lan url without host", minimal + `bmc: {url: "redfish+https:///x"}
`, []string{`blade.yaml:4: bmc.url: redfish+https needs a host`}},
		{"bad url", minimal + `bmc: {url: "ipmi+lan://[::1"}
`, []string{`blade.yaml:4: bmc.url: not a URL: parse "ipmi+lan://[::1": missing ']' in host`}},
		{"static address", minimal + `boot: {network: {mode: static, address: 10.0.0.5}}
`, []string{`blade.yaml:4: boot.network.address: "10.0.0.5" is not an address in CIDR form (10.0.0.5/24)`}},
		{"no fabric switches", minimal + `fabric: {id: pcie}
`, []string{`blade.yaml:4: fabric.switches: a fabric needs at least one switch`}},
		{"missing apiVersion", "board: {id: b}\n", []string{`blade.yaml:1: apiVersion: required ("podos.dev/v1")`}},
		{"syntax", minimal + "sensors: [\n", []string{`blade.yaml:4: did not find expected node content`}},
		{"tabs", "apiVersion: podos.dev/v1\nboard:\n\tid: b\n", []string{`blade.yaml:3: found character that cannot start any token`}},
		{"empty", "", []string{`blade.yaml: empty config`}},
		{"two documents", minimal + "---\nboard: {id: c}\n", []string{`blade.yaml:4: more than one YAML document`}},
		{"not a mapping", "- a\n- b\n", []string{`blade.yaml:1: must be a mapping, got a list`}},
		{"duplicate keys", minimal + "board: {id: c}\n", []string{`blade.yaml:4: board: duplicate key (first at line 2)`}},
		{"non-string keys", minimal + "sensors:\n  - {[a]: 1}\nworkloads:\n  - {name: w, image: i, env: {1: x}}\n",
			[]string{`blade.yaml:5: sensors[0]: keys must be strings`, `blade.yaml:7: workloads[0].env: keys must be strings, got integer 1`}},
		{"scalar where mapping", minimal + "poll: fast\n", []string{`blade.yaml:4: poll: must be a mapping, got "fast"`}},
		{"mapping where scalar", minimal + "sensors: [{name: {a: 1}}]\n", []string{`blade.yaml:4: sensors[0].name: must be a string, got a mapping`}},
		{"bad bool and overflow", minimal + "sensors: [{name: X, role: temp, required: yes, debounce: 99999999999999999999}]\n",
			[]string{`blade.yaml:4: sensors[0].debounce: must be an integer, got number 99999999999999999999`,
				`blade.yaml:4: sensors[0].required: must be true or false, got "yes"`}},
		{"negative unsigned", minimal + "sensors: [{name: X, role: temp, sim: {number: -1}}]\n",
			[]string{`blade.yaml:4: sensors[0].sim.number: -1 is out of range 0..255`}},
		{"huge int", minimal + "poll: {debounce: 9223372036854775807}\n",
			[]string{`blade.yaml:4: poll.debounce: must be between 1 and 100 (0 means the default), got 9223372036854775807`}},
		{"non-finite", minimal + "sensors: [{name: X, role: temp, thresholds: {upper_critical: .nan}}]\n",
			[]string{`blade.yaml:4: sensors[0].thresholds.upper_critical: must be a finite number, got ".nan"`}},
		{"bad merge", minimal + "poll: {<<: [1]}\n", []string{`blade.yaml:4: poll: merge key << must refer to a mapping`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkErrors(t, c) })
	}
}

func checkErrors(t *testing.T, c errCase) {
	t.Helper()
	cfg, err := Parse("blade.yaml", []byte(c.yaml))
	if c.want == nil {
		if err != nil {
			t.Fatalf("unexpected error:\n%v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error; want\n%s", strings.Join(c.want, "\n"))
	}
	if cfg != nil {
		t.Error("a config with errors returned a config")
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not Errors", err)
	}
	if got, want := err.Error(), strings.Join(c.want, "\n"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
