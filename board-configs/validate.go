package boardconfig

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Enumerations of the format, shared by validation and the JSON Schema test.
var (
	Roles = []Role{RolePSUInput, RolePSUOutput, RolePSUStatus, RoleFuse, RoleTempOil,
		RoleTempInlet, RoleTempCPU, RoleTemp, RolePump, RoleFan, RoleLeak, RoleOther}
	Subsystems    = []string{"Power", "Thermal", "Cooling", "Fuses", "Fabric", "Other"}
	RuleStates    = []string{"Warning", "Critical"}
	Actions       = []string{"shed", "stop", "throttle", "event"}
	Priorities    = []string{"critical", "normal", "sheddable"}
	Restarts      = []string{"always", "on-failure", "never"}
	PortExpects   = []string{"nvme", "storage", "ethernet", "network", "accelerator", "empty"}
	NetworkModes  = []string{"dhcp", "static"}
	BMCSchemes    = []string{"ipmi+kcs", "ipmi+lan", "ipmi+lanplus", "redfish+https", "redfish+http"}
	LinkSpeedsGTs = []float64{2.5, 5, 8, 16, 32, 64}
	LinkWidths    = []int{1, 2, 4, 8, 12, 16, 32}
	// SimThresholdKeys are the raw_thresholds keys, lowest first.
	SimThresholdKeys = []string{"lnr", "lc", "lnc", "unc", "uc", "unr"}
)

var (
	reID       = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	reBDF      = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
	reModule   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	reEnvKey   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reQEMUID   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)
	reSensorNm = regexp.MustCompile(`^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$`)
)

// IsThresholdRole tells whether sensors of a role are threshold sensors
// (readings compared to thresholds) rather than discrete ones.
func IsThresholdRole(r Role) bool {
	switch r {
	case RolePSUStatus, RoleFuse, RoleLeak:
		return false
	}
	return true
}

// Validate checks a config built or changed in Go. Errors carry no file or
// line; Parse reports those for a file.
func (c *Config) Validate() error {
	el := &errorList{}
	c.validate(el)
	return el.err()
}

func (c *Config) validate(el *errorList) {
	if c.APIVersion != APIVersion {
		if c.APIVersion == "" {
			el.addf("apiVersion", "required (%q)", APIVersion)
		} else {
			el.addf("apiVersion", "must be %q, got %q", APIVersion, c.APIVersion)
		}
	}
	c.validateBoard(el)
	validateBMC(el, &c.BMC)
	if c.Poll.Interval.Duration < 0 || (c.Poll.Interval.Duration > 0 && c.Poll.Interval.Duration < 10*time.Millisecond) {
		el.addf("poll.interval", "must be at least 10ms, got %s", c.Poll.Interval)
	}
	if c.Poll.Interval.Duration > time.Hour {
		el.addf("poll.interval", "must be at most 1h, got %s", c.Poll.Interval)
	}
	checkDebounce(el, "poll.debounce", c.Poll.Debounce)
	c.validateSensors(el)
	c.validatePolicy(el)
	if c.Fabric != nil {
		validateFabric(el, c.Fabric)
	}
	validateWorkloads(el, c.Workloads)
	validateBoot(el, &c.Boot)
	if c.Emulation != nil {
		validateEmulation(el, c.Emulation)
	}
}

func checkDebounce(el *errorList, p string, n int) {
	if n < 0 || n > 100 {
		el.addf(p, "must be between 1 and 100 (0 means the default), got %d", n)
	}
}

func checkID(el *errorList, p, id string) {
	switch {
	case id == "":
		el.addf(p, "required")
	case !reID.MatchString(id):
		el.addf(p, "%q must be lower-case letters, digits and '-' (a DNS label, at most 63 characters)", id)
	}
}

func checkEnum[T comparable](el *errorList, p string, v T, allowed []T) bool {
	if slices.Contains(allowed, v) {
		return true
	}
	el.addf(p, "%v is not one of %s", quoteAny(v), list(allowed))
	return false
}

func quoteAny(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	if s, ok := v.(fmt.Stringer); ok {
		return fmt.Sprintf("%q", s.String())
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

func list[T any](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

func (c *Config) validateBoard(el *errorList) {
	checkID(el, "board.id", c.Board.ID)
	if c.Board.Slot < 0 || c.Board.Slot > 255 {
		el.addf("board.slot", "must be between 0 and 255, got %d", c.Board.Slot)
	}
}

func validateBMC(el *errorList, b *BMC) {
	if b.URL != "" {
		u, err := url.Parse(b.URL)
		switch {
		case err != nil:
			el.addf("bmc.url", "not a URL: %v", err)
		case !slices.Contains(BMCSchemes, u.Scheme):
			el.addf("bmc.url", "scheme %q is not one of %s", u.Scheme, list(BMCSchemes))
		case u.Scheme == "ipmi+kcs" && u.Path == "":
			el.addf("bmc.url", "ipmi+kcs needs a device path (ipmi+kcs:///dev/ipmi0)")
		case u.Scheme != "ipmi+kcs" && u.Host == "":
			el.addf("bmc.url", "%s needs a host", u.Scheme)
		}
	}
	if b.Timeout.Duration < 0 || b.Timeout.Duration > time.Minute {
		el.addf("bmc.timeout", "must be between 0 and 1m, got %s", b.Timeout)
	}
	if b.Retries < 0 || b.Retries > 10 {
		el.addf("bmc.retries", "must be between 0 and 10, got %d", b.Retries)
	}
}

func (c *Config) validateSensors(el *errorList) {
	names := map[string]int{}
	numbers := map[uint8]int{}
	for i := range c.Sensors {
		s := &c.Sensors[i]
		p := fmt.Sprintf("sensors[%d]", i)
		switch {
		case s.Name == "":
			el.addf(p+".name", "required")
		case !reSensorNm.MatchString(s.Name):
			el.addf(p+".name", "%q must be printable ASCII without leading or trailing spaces", s.Name)
		default:
			if j, dup := names[s.Name]; dup {
				el.addf(p+".name", "%q is already used by sensors[%d]", s.Name, j)
			} else {
				names[s.Name] = i
			}
		}
		roleOK := false
		if s.Role == "" {
			el.addf(p+".role", "required (one of %s)", list(Roles))
		} else {
			roleOK = checkEnum(el, p+".role", s.Role, Roles)
		}
		checkDebounce(el, p+".debounce", s.Debounce)
		if s.Thresholds != nil {
			if roleOK && !IsThresholdRole(s.Role) {
				el.addf(p+".thresholds", "a %s sensor is discrete: thresholds do not apply", s.Role)
			}
			validateThresholds(el, p+".thresholds", s.Thresholds)
		}
		if s.Sim != nil {
			if j, dup := numbers[s.Sim.Number]; dup {
				el.addf(p+".sim.number", "%d is already used by sensors[%d]", s.Sim.Number, j)
			} else {
				numbers[s.Sim.Number] = i
			}
			validateSim(el, p+".sim", s.Sim, s.Role, roleOK)
		}
	}
}

// thresholdOrder is the Thresholds fields from lowest to highest.
func thresholdOrder(t *Thresholds) []struct {
	name string
	v    *float64
} {
	return []struct {
		name string
		v    *float64
	}{
		{"lower_fatal", t.LowerFatal},
		{"lower_critical", t.LowerCritical},
		{"lower_non_critical", t.LowerNonCritical},
		{"upper_non_critical", t.UpperNonCritical},
		{"upper_critical", t.UpperCritical},
		{"upper_fatal", t.UpperFatal},
	}
}

func validateThresholds(el *errorList, p string, t *Thresholds) {
	// Each set threshold must be strictly above every lower one that is
	// set; report against the nearest set one below.
	var prevName string
	var prev *float64
	for _, th := range thresholdOrder(t) {
		if th.v == nil {
			continue
		}
		if prev != nil && *th.v <= *prev {
			el.addf(p+"."+th.name, "must be above %s (%s <= %s)", prevName, fmtNum(*th.v), fmtNum(*prev))
		}
		prevName, prev = th.name, th.v
	}
	if t.Hysteresis != nil && *t.Hysteresis < 0 {
		el.addf(p+".hysteresis", "must not be negative, got %s", fmtNum(*t.Hysteresis))
	}
}

func fmtNum(f float64) string { return fmt.Sprintf("%g", f) }

// SimValue converts a raw reading or threshold of a simulated sensor to
// its value (IPMI 2.0 §36.3): (M*raw + B*10^BExp) * 10^RExp, raw read as
// 2's complement when Signed.
func (s *SimSensor) SimValue(raw uint8) float64 {
	x := float64(raw)
	if s.Signed {
		x = float64(int8(raw))
	}
	return (float64(s.M)*x + float64(s.B)*math.Pow10(s.BExp)) * math.Pow10(s.RExp)
}

// SimRaw is the raw reading of a simulated threshold sensor closest to
// value v: the inverse of SimValue, for tests that set a reading. It fails
// when v is outside the sensor's range or M is zero.
func (s *SimSensor) SimRaw(v float64) (uint8, error) {
	if s.M == 0 {
		return 0, fmt.Errorf("sensor has no conversion (m is 0)")
	}
	x := math.Round((v/math.Pow10(s.RExp) - float64(s.B)*math.Pow10(s.BExp)) / float64(s.M))
	lo, hi := 0.0, 255.0
	if s.Signed {
		lo, hi = -128, 127
	}
	if math.IsNaN(x) || x < lo || x > hi {
		return 0, fmt.Errorf("%g is outside the sensor's range %g..%g", v, s.SimValue(uint8(int8(lo))), s.SimValue(uint8(int(hi))))
	}
	return uint8(int(x)), nil
}

// SimHysteresis is the simulated sensor's hysteresis in its unit: raw
// hysteresis is a count, scaled by M and RExp only (no offset).
func (s *SimSensor) SimHysteresis() float64 {
	return math.Abs(float64(s.M)) * float64(s.RawHysteresis) * math.Pow10(s.RExp)
}

// IsThreshold tells whether the simulated sensor is a threshold sensor
// (event/reading type 0x01).
func (s *SimSensor) IsThreshold() bool { return s.EventType == 0x01 }

func validateSim(el *errorList, p string, s *SimSensor, role Role, roleOK bool) {
	convOK := true // the conversion factors are in range
	rng := func(f string, v, lo, hi int) {
		if v < lo || v > hi {
			el.addf(p+"."+f, "must be between %d and %d, got %d", lo, hi, v)
			convOK = false
		}
	}
	rng("m", s.M, -512, 511) // 10-bit 2's complement
	rng("b", s.B, -512, 511)
	rng("r_exp", s.RExp, -8, 7) // 4-bit 2's complement
	rng("b_exp", s.BExp, -8, 7)
	// Event/reading types: 0x01 threshold, 0x02-0x0c generic discrete,
	// 0x6f sensor-specific, 0x70-0x7f OEM.
	et := s.EventType
	if et == 0 || (et > 0x0c && et < 0x6f) || et > 0x7f {
		el.addf(p+".event_type", "0x%02x is not an IPMI event/reading type (0x01 threshold, 0x02-0x0c generic, 0x6f sensor-specific, 0x70-0x7f OEM)", et)
	}
	if s.SensorType == 0 {
		el.addf(p+".sensor_type", "required (an IPMI sensor type code, e.g. 0x01 temperature)")
	}
	if s.Unit > 92 {
		el.addf(p+".unit", "%d is not an IPMI unit code (0-92)", s.Unit)
	}
	if roleOK && et != 0 && IsThresholdRole(role) != s.IsThreshold() {
		if s.IsThreshold() {
			el.addf(p+".event_type", "a %s sensor is discrete: event_type must not be 0x01 (threshold)", role)
		} else {
			el.addf(p+".event_type", "a %s sensor is a threshold sensor: event_type must be 0x01", role)
		}
	}
	if !s.IsThreshold() {
		if len(s.RawThresholds) > 0 {
			el.addf(p+".raw_thresholds", "only threshold sensors (event_type 0x01) have thresholds")
		}
		if s.RawHysteresis != 0 {
			el.addf(p+".raw_hysteresis", "only threshold sensors (event_type 0x01) have hysteresis")
		}
		if s.Initial > 0x7fff {
			el.addf(p+".initial", "a discrete state has 15 offsets (bits 0-14), got 0x%04x", s.Initial)
		}
		return
	}
	if s.M == 0 {
		el.addf(p+".m", "required for a threshold sensor (non-zero)")
	}
	if s.Unit == 0 {
		el.addf(p+".unit", "required for a threshold sensor (e.g. 1 degrees C, 4 volts)")
	}
	if s.Initial > 0xff {
		el.addf(p+".initial", "a raw reading is one byte (0-255), got %d", s.Initial)
	}
	var prevKey string
	var prev float64
	have := false
	for _, k := range slices.Sorted(maps.Keys(s.RawThresholds)) {
		if !slices.Contains(SimThresholdKeys, k) {
			el.addf(p+".raw_thresholds."+k, "unknown threshold %q (one of %s)", k, list(SimThresholdKeys))
		}
	}
	if s.M == 0 || !convOK {
		return // no conversion: the ordering cannot be checked
	}
	for _, k := range SimThresholdKeys {
		raw, ok := s.RawThresholds[k]
		if !ok {
			continue
		}
		v := s.SimValue(raw)
		if have && v <= prev {
			el.addf(p+".raw_thresholds."+k, "must convert above %s (%s <= %s)", prevKey, fmtNum(v), fmtNum(prev))
		}
		prevKey, prev, have = k, v, true
	}
}

func (c *Config) validatePolicy(el *errorList) {
	if c.Policy.Hold.Duration < 0 || c.Policy.Hold.Duration > 24*time.Hour {
		el.addf("policy.hold", "must be between 0 and 24h, got %s", c.Policy.Hold)
	}
	names := map[string]int{}
	for i, r := range c.Policy.Rules {
		p := fmt.Sprintf("policy.rules[%d]", i)
		if r.Name == "" {
			el.addf(p+".name", "required")
		} else if j, dup := names[r.Name]; dup {
			el.addf(p+".name", "%q is already used by policy.rules[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		n := 0
		if r.When.Subsystem != "" {
			n++
			checkEnum(el, p+".when.subsystem", r.When.Subsystem, Subsystems)
		}
		if r.When.Role != "" {
			n++
			checkEnum(el, p+".when.role", r.When.Role, Roles)
		}
		if r.When.Sensor != "" {
			n++
			if c.Sensor(r.When.Sensor) == nil {
				el.addf(p+".when.sensor", "%q is not a sensor of this config", r.When.Sensor)
			}
		}
		if n != 1 {
			el.addf(p+".when", "needs exactly one of subsystem, role or sensor (got %d)", n)
		}
		if r.When.State == "" {
			el.addf(p+".when.state", "required (Warning or Critical)")
		} else {
			checkEnum(el, p+".when.state", r.When.State, RuleStates)
		}
		if r.Action == "" {
			el.addf(p+".action", "required (one of %s)", list(Actions))
		} else {
			checkEnum(el, p+".action", r.Action, Actions)
		}
		switch {
		case r.Action == "throttle" && (r.ThrottlePercent < 1 || r.ThrottlePercent > 100):
			el.addf(p+".throttle_percent", "a throttle needs a percentage between 1 and 100, got %d", r.ThrottlePercent)
		case r.Action != "throttle" && r.ThrottlePercent != 0:
			el.addf(p+".throttle_percent", "only a throttle action takes a percentage")
		}
	}
}

func validateFabric(el *errorList, f *Fabric) {
	if f.ID != "" {
		checkID(el, "fabric.id", f.ID)
	}
	if f.AERLimit < 0 {
		el.addf("fabric.aer_limit_per_minute", "must not be negative, got %d", f.AERLimit)
	}
	if len(f.Switches) == 0 {
		el.addf("fabric.switches", "a fabric needs at least one switch")
	}
	names := map[string]int{}
	roots := map[string]int{}
	for i, sw := range f.Switches {
		p := fmt.Sprintf("fabric.switches[%d]", i)
		if sw.Name == "" {
			el.addf(p+".name", "required")
		} else if j, dup := names[sw.Name]; dup {
			el.addf(p+".name", "%q is already used by fabric.switches[%d]", sw.Name, j)
		} else {
			names[sw.Name] = i
		}
		switch {
		case sw.RootPort == "":
			el.addf(p+".root_port", "required (a PCI address such as 0000:00:03.0)")
		case !reBDF.MatchString(sw.RootPort):
			el.addf(p+".root_port", "%q is not a PCI address (domain:bus:device.function, lower-case hex, e.g. 0000:00:03.0)", sw.RootPort)
		default:
			if j, dup := roots[sw.RootPort]; dup {
				el.addf(p+".root_port", "%s is already used by fabric.switches[%d]", sw.RootPort, j)
			} else {
				roots[sw.RootPort] = i
			}
		}
		if len(sw.Ports) == 0 {
			el.addf(p+".ports", "a switch needs at least one port")
		}
		ports := map[int]int{}
		for k, port := range sw.Ports {
			pp := fmt.Sprintf("%s.ports[%d]", p, k)
			if port.Port < 0 || port.Port > 255 {
				el.addf(pp+".port", "must be between 0 and 255, got %d", port.Port)
			} else if j, dup := ports[port.Port]; dup {
				el.addf(pp+".port", "port %d is already described by %s.ports[%d]", port.Port, p, j)
			} else {
				ports[port.Port] = k
			}
			if port.Expect == "" {
				el.addf(pp+".expect", "required (one of %s)", list(PortExpects))
			} else {
				checkEnum(el, pp+".expect", port.Expect, PortExpects)
			}
			if port.Speed != 0 && !slices.Contains(LinkSpeedsGTs, port.Speed) {
				el.addf(pp+".speed_gts", "%s is not a PCIe link speed (%s GT/s)", fmtNum(port.Speed), list(LinkSpeedsGTs))
			}
			if port.Width != 0 && !slices.Contains(LinkWidths, port.Width) {
				el.addf(pp+".width", "%d is not a PCIe link width (%s)", port.Width, list(LinkWidths))
			}
			if port.Expect == "empty" && (port.Speed != 0 || port.Width != 0) {
				el.addf(pp, "an empty port has no link speed or width")
			}
		}
	}
}

func validateWorkloads(el *errorList, ws []Workload) {
	names := map[string]int{}
	for i, w := range ws {
		p := fmt.Sprintf("workloads[%d]", i)
		checkID(el, p+".name", w.Name)
		if w.Name != "" {
			if j, dup := names[w.Name]; dup {
				el.addf(p+".name", "%q is already used by workloads[%d]", w.Name, j)
			} else {
				names[w.Name] = i
			}
		}
		switch {
		case strings.TrimSpace(w.Image) == "":
			el.addf(p+".image", "required (oci-archive:/path or a registry reference)")
		case strings.HasPrefix(w.Image, "oci-archive:"):
			if f := strings.TrimPrefix(w.Image, "oci-archive:"); !path.IsAbs(f) {
				el.addf(p+".image", "an oci-archive path must be absolute, got %q", f)
			}
		case strings.ContainsAny(w.Image, " \t\n"):
			el.addf(p+".image", "%q contains spaces", w.Image)
		}
		if w.Priority != "" {
			checkEnum(el, p+".priority", w.Priority, Priorities)
		}
		if w.Restart != "" {
			checkEnum(el, p+".restart", w.Restart, Restarts)
		}
		if w.CPU < 0 || w.CPU > 1024 {
			el.addf(p+".cpu", "must be between 0 and 1024 cores, got %s", fmtNum(w.CPU))
		}
		if w.MemoryMB < 0 {
			el.addf(p+".memory_mb", "must not be negative, got %d", w.MemoryMB)
		}
		for _, k := range slices.Sorted(maps.Keys(w.Env)) {
			if !reEnvKey.MatchString(k) {
				el.addf(p+".env."+k, "%q is not an environment variable name", k)
			}
		}
	}
}

func validateBoot(el *errorList, b *Boot) {
	for i, m := range b.Modules {
		if !reModule.MatchString(m) {
			el.addf(fmt.Sprintf("boot.modules[%d]", i), "%q is not a module name (no path, no .ko)", m)
		}
	}
	n := &b.Network
	if n.Interface != "" && (len(n.Interface) > 15 || strings.ContainsAny(n.Interface, "/ \t\n:")) {
		el.addf("boot.network.interface", "%q is not an interface name", n.Interface)
	}
	if n.Mode != "" && checkEnum(el, "boot.network.mode", n.Mode, NetworkModes) {
		switch n.Mode {
		case "static":
			if n.Address == "" {
				el.addf("boot.network.address", "static mode needs an address (CIDR, e.g. 10.0.0.5/24)")
			}
		case "dhcp":
			if n.Address != "" || n.Gateway != "" {
				el.addf("boot.network", "address and gateway are for static mode only")
			}
		}
	}
	if n.Address != "" {
		if _, err := netip.ParsePrefix(n.Address); err != nil {
			el.addf("boot.network.address", "%q is not an address in CIDR form (10.0.0.5/24)", n.Address)
		}
	}
	if n.Gateway != "" {
		if _, err := netip.ParseAddr(n.Gateway); err != nil {
			el.addf("boot.network.gateway", "%q is not an IP address", n.Gateway)
		}
	}
	if b.Persistent != "" && !strings.HasPrefix(b.Persistent, "/dev/") {
		el.addf("boot.persistent", "%q must be a device path under /dev/", b.Persistent)
	}
	if b.Watchdog != "" && !strings.HasPrefix(b.Watchdog, "/dev/") {
		el.addf("boot.watchdog", "%q must be a device path under /dev/", b.Watchdog)
	}
}

func validateEmulation(el *errorList, e *Emulation) {
	if e.MemoryMB != 0 && e.MemoryMB < 128 {
		el.addf("emulation.memory_mb", "must be at least 128, got %d", e.MemoryMB)
	}
	if e.CPUs < 0 || e.CPUs > 64 {
		el.addf("emulation.cpus", "must be between 1 and 64, got %d", e.CPUs)
	}
	if e.DiskMB < 0 {
		el.addf("emulation.disk_mb", "must not be negative, got %d", e.DiskMB)
	}
	ids := map[string]int{}
	for i, d := range e.PCIe {
		p := fmt.Sprintf("emulation.pcie[%d]", i)
		switch {
		case d.ID == "":
			el.addf(p+".id", "required")
		case !reQEMUID.MatchString(d.ID):
			el.addf(p+".id", "%q is not a QEMU id (a letter, then letters, digits, '_', '.', '-')", d.ID)
		default:
			if j, dup := ids[d.ID]; dup {
				el.addf(p+".id", "%q is already used by emulation.pcie[%d]", d.ID, j)
			}
		}
		if d.Driver == "" {
			el.addf(p+".driver", "required (a QEMU device driver, e.g. e1000e)")
		} else if !reQEMUID.MatchString(d.Driver) {
			el.addf(p+".driver", "%q is not a QEMU device driver name", d.Driver)
		}
		if d.Bus != "" {
			if _, ok := ids[d.Bus]; !ok {
				el.addf(p+".bus", "%q is not the id of an earlier device", d.Bus)
			}
		}
		if d.ID != "" {
			if _, dup := ids[d.ID]; !dup {
				ids[d.ID] = i
			}
		}
		for _, k := range slices.Sorted(maps.Keys(d.Props)) {
			if k == "" || strings.ContainsAny(k, ",= ") || strings.ContainsAny(d.Props[k], ",\n") {
				el.addf(p+".props."+k, "QEMU property names and values must not contain ',', '=' or newlines")
			}
			if k == "id" || k == "bus" || k == "driver" {
				el.addf(p+".props."+k, "set %s as a field, not a property", k)
			}
		}
	}
}
