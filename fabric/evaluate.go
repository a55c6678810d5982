package fabric

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/health"
)

// Finding codes.
const (
	CodeRootPortMissing = "root-port-missing"
	CodeSwitchMissing   = "switch-missing"
	CodePortMissing     = "port-missing"
	CodeDeviceMissing   = "device-missing"
	CodeWrongDevice     = "wrong-device"
	CodeMisSlotted      = "mis-slotted"
	CodeExtraDevice     = "extra-device"
	CodeLinkSpeed       = "link-speed"
	CodeLinkWidth       = "link-width"
	CodeAERCorrectable  = "aer-correctable"
	CodeAERNonFatal     = "aer-nonfatal"
	CodeAERFatal        = "aer-fatal"
	CodeBadExpectation  = "bad-expectation"
)

// Finding is one thing wrong with the fabric.
type Finding struct {
	// Subject is the BDF the finding is about, or "<switch>/port<N>" when
	// there is no function to name (an absent port or device).
	Subject string       `json:"subject"`
	Switch  string       `json:"switch,omitempty"`
	Port    int          `json:"port,omitempty"` // downstream port (slot) number, 0 if none
	Code    string       `json:"code"`
	State   health.State `json:"state"`
	Reason  string       `json:"reason"`
}

// DefaultAERLimit is the per-minute AER limit when the config sets none.
const DefaultAERLimit = 10

// AERSample is every function's AER totals at one instant: the baseline
// Evaluate measures error rates against.
type AERSample struct {
	Time   time.Time            `json:"time"`
	Counts map[string]AERTotals `json:"counts"`
}

// AERTotals are one function's total correctable, non-fatal and fatal errors.
type AERTotals struct {
	Correctable, NonFatal, Fatal uint64
}

// SampleAER takes the AER baseline of a topology.
func SampleAER(t *Topology) *AERSample {
	s := &AERSample{Counts: map[string]AERTotals{}}
	if t == nil {
		return s
	}
	s.Time = t.Time
	for _, d := range t.Devices {
		if d.AER != nil {
			s.Counts[d.BDF] = AERTotals{d.AER.Correctable.Total, d.AER.NonFatal.Total, d.AER.Fatal.Total}
		}
	}
	return s
}

// ClassMatches reports whether a 24-bit PCI class code is of the board
// config's expected kind: "nvme" (01:08:02), "storage" (any mass storage,
// 01), "ethernet" (02:00), "network" (02), "accelerator" (12 processing
// accelerator, 0b processor, 03:02 3D controller, 03:80 other display).
func ClassMatches(expect string, class uint32) bool {
	base, sub := class>>16, (class>>8)&0xff
	switch expect {
	case "nvme":
		return class == 0x010802
	case "storage":
		return base == 0x01
	case "ethernet":
		return base == 0x02 && sub == 0x00
	case "network":
		return base == 0x02
	case "accelerator":
		return base == 0x12 || base == 0x0b || class>>8 == 0x0302 || class>>8 == 0x0380
	}
	return false
}

// knownExpect lists the kinds ClassMatches knows, plus "empty".
var knownExpect = []string{"nvme", "storage", "ethernet", "network", "accelerator", "empty"}

// classKind names a class code by the most specific expected kind it matches.
func classKind(class uint32) string {
	for _, k := range []string{"nvme", "storage", "ethernet", "network", "accelerator"} {
		if ClassMatches(k, class) {
			return k
		}
	}
	return fmt.Sprintf("class %06x", class)
}

// Evaluate compares the fabric with what the board config expects and
// returns what is wrong, sorted by Subject then Code. It is pure.
//
// For each configured switch it finds the root port by BDF, the switch's
// upstream port below it and its downstream ports by slot number, then
// flags: a missing root port, switch or port (Critical); an expected
// device absent (Critical), or of another class (Critical, with the port
// it sits in if it is in the wrong one: mis-slotted); a device in a port
// expected empty or not configured (Warning); a link trained below the
// expected speed or width, or below what both ends support (Warning).
//
// For every function with AER counters it compares the totals with prev
// (nil: no AER findings). The rate is the increase divided by the time
// since prev, counted as at least one minute, so a burst right after the
// baseline is not inflated; above the config's per-minute limit
// (DefaultAERLimit if 0) correctable errors are Warning, non-fatal and
// fatal Critical. A counter that went down (the device was re-added)
// counts from zero.
func Evaluate(expected *boardconfig.Fabric, topo *Topology, prev *AERSample, now time.Time) []Finding {
	var out []Finding
	if topo == nil {
		return nil
	}
	if expected != nil {
		for _, sw := range expected.Switches {
			out = append(out, evalSwitch(sw, topo)...)
		}
	}
	limit := DefaultAERLimit
	if expected != nil && expected.AERLimit > 0 {
		limit = expected.AERLimit
	}
	out = append(out, evalAER(topo, prev, now, limit)...)
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.Subject, b.Subject), strings.Compare(a.Code, b.Code))
	})
	return out
}

func evalSwitch(sw boardconfig.Switch, t *Topology) []Finding {
	var out []Finding
	swSubject := func(port int) string { return sw.Name + "/port" + strconv.Itoa(port) }
	rp := t.Device(sw.RootPort)
	if rp == nil {
		return []Finding{{Subject: sw.RootPort, Switch: sw.Name, Code: CodeRootPortMissing, State: health.Critical,
			Reason: fmt.Sprintf("root port %s of switch %s is not on the bus", sw.RootPort, sw.Name)}}
	}
	var up *Device
	for _, c := range t.Children(rp.BDF) {
		if c.Type == TypeUpstream {
			up = c
			break
		}
	}
	if up == nil {
		return []Finding{{Subject: sw.RootPort, Switch: sw.Name, Code: CodeSwitchMissing, State: health.Critical,
			Reason: fmt.Sprintf("switch %s not found below root port %s (link down?)", sw.Name, sw.RootPort)}}
	}
	out = append(out, evalLink(rp, up, 0, 0, sw.Name, 0)...)

	ports := map[int]*Device{}
	for _, c := range t.Children(up.BDF) {
		if c.Type == TypeDownstream {
			n := c.SlotNumber
			if n == 0 {
				n = slotNumberFromName(t, c.BDF)
			}
			if n > 0 {
				ports[n] = c
			}
		}
	}
	// What sits in each port: its function 0 (or first function).
	occupant := func(p *Device) *Device {
		if p == nil || !t.LinkUp(p.BDF) {
			return nil
		}
		ch := t.Children(p.BDF)
		if len(ch) == 0 {
			return nil
		}
		for _, c := range ch {
			if c.Function() == 0 {
				return c
			}
		}
		return ch[0]
	}
	expect := map[int]boardconfig.SwitchPort{}
	for _, p := range sw.Ports {
		expect[p.Port] = p
	}
	// whereIs finds a port holding a device of kind k that does not expect it.
	whereIs := func(k string) (int, *Device) {
		for _, n := range sortedKeys(ports) {
			if dev := occupant(ports[n]); dev != nil && ClassMatches(k, dev.Class) {
				if e, ok := expect[n]; ok && e.Expect != "empty" && ClassMatches(e.Expect, dev.Class) {
					continue // where it belongs
				}
				return n, dev
			}
		}
		return 0, nil
	}
	for _, p := range sw.Ports {
		port := ports[p.Port]
		if !slices.Contains(knownExpect, p.Expect) {
			out = append(out, Finding{Subject: swSubject(p.Port), Switch: sw.Name, Port: p.Port, Code: CodeBadExpectation, State: health.Warning,
				Reason: fmt.Sprintf("port %d of %s expects unknown device class %q", p.Port, sw.Name, p.Expect)})
			continue
		}
		if port == nil {
			out = append(out, Finding{Subject: swSubject(p.Port), Switch: sw.Name, Port: p.Port, Code: CodePortMissing, State: health.Critical,
				Reason: fmt.Sprintf("downstream port %d of switch %s is not on the bus", p.Port, sw.Name)})
			continue
		}
		dev := occupant(port)
		switch {
		case p.Expect == "empty" && dev == nil:
		case p.Expect == "empty":
			code, why := CodeExtraDevice, ""
			for _, q := range sw.Ports {
				if q.Expect != "empty" && q.Port != p.Port && ClassMatches(q.Expect, dev.Class) && !occupantMatches(occupant(ports[q.Port]), q.Expect) {
					code, why = CodeMisSlotted, fmt.Sprintf(" (mis-slotted: expected in port %d)", q.Port)
					break
				}
			}
			out = append(out, Finding{Subject: dev.BDF, Switch: sw.Name, Port: p.Port, Code: code, State: health.Warning,
				Reason: fmt.Sprintf("%s device %s in port %d of %s, which should be empty%s", classKind(dev.Class), dev.BDF, p.Port, sw.Name, why)})
		case dev == nil:
			why := "port empty, no link"
			if n, other := whereIs(p.Expect); other != nil {
				why = fmt.Sprintf("port empty; a %s device (%s) is in port %d instead", p.Expect, other.BDF, n)
			}
			out = append(out, Finding{Subject: swSubject(p.Port), Switch: sw.Name, Port: p.Port, Code: CodeDeviceMissing, State: health.Critical,
				Reason: fmt.Sprintf("expected a %s device in port %d of %s: %s", p.Expect, p.Port, sw.Name, why)})
		case !ClassMatches(p.Expect, dev.Class):
			out = append(out, Finding{Subject: dev.BDF, Switch: sw.Name, Port: p.Port, Code: CodeWrongDevice, State: health.Critical,
				Reason: fmt.Sprintf("expected a %s device in port %d of %s, found %s (%s)", p.Expect, p.Port, sw.Name, classKind(dev.Class), dev.BDF)})
		default:
			out = append(out, evalLink(port, dev, p.Speed, p.Width, sw.Name, p.Port)...)
		}
	}
	// Devices in ports the config does not list.
	for _, n := range sortedKeys(ports) {
		if _, ok := expect[n]; ok {
			continue
		}
		if dev := occupant(ports[n]); dev != nil {
			out = append(out, Finding{Subject: dev.BDF, Switch: sw.Name, Port: n, Code: CodeExtraDevice, State: health.Warning,
				Reason: fmt.Sprintf("%s device %s in port %d of %s, which the board config does not list", classKind(dev.Class), dev.BDF, n, sw.Name)})
		}
	}
	return out
}

func occupantMatches(d *Device, expect string) bool { return d != nil && ClassMatches(expect, d.Class) }

// evalLink checks the link between port (above) and dev (below) against
// the expected speed and width (0: no expectation) and against the best
// both ends support.
func evalLink(port, dev *Device, wantSpeed float64, wantWidth int, sw string, portNum int) []Finding {
	l := port.Link
	if l == nil || l.Speed == 0 {
		l = dev.Link
	}
	if l == nil || l.Speed == 0 || l.Width == 0 {
		return nil
	}
	capSpeed := minKnown(port.Link, dev.Link, func(l *Link) float64 { return l.MaxSpeed })
	capWidth := int(minKnown(port.Link, dev.Link, func(l *Link) float64 { return float64(l.MaxWidth) }))
	var out []Finding
	subject := dev.BDF
	f := func(code, reason string) {
		out = append(out, Finding{Subject: subject, Switch: sw, Port: portNum, Code: code, State: health.Warning, Reason: reason})
	}
	switch {
	case wantSpeed > 0 && l.Speed < wantSpeed:
		f(CodeLinkSpeed, fmt.Sprintf("link %s-%s trained at %g GT/s, expected %g GT/s", port.BDF, dev.BDF, l.Speed, wantSpeed))
	case capSpeed > 0 && l.Speed < capSpeed:
		f(CodeLinkSpeed, fmt.Sprintf("link %s-%s trained at %g GT/s, below the %g GT/s both ends support", port.BDF, dev.BDF, l.Speed, capSpeed))
	}
	switch {
	case wantWidth > 0 && l.Width < wantWidth:
		f(CodeLinkWidth, fmt.Sprintf("link %s-%s trained at x%d, expected x%d", port.BDF, dev.BDF, l.Width, wantWidth))
	case capWidth > 0 && l.Width < capWidth:
		f(CodeLinkWidth, fmt.Sprintf("link %s-%s trained at x%d, below the x%d both ends support", port.BDF, dev.BDF, l.Width, capWidth))
	}
	return out
}

// minKnown is the smaller of a value at the two ends of a link, or 0 if
// either end does not report it: a link is only "below what both ends
// support" when both ends say what they support (QEMU's xio3130
// downstream ports report no maximum, and a function in AER recovery
// reads all ones).
func minKnown(a, b *Link, get func(*Link) float64) float64 {
	if a == nil || b == nil {
		return 0
	}
	x, y := get(a), get(b)
	if x <= 0 || y <= 0 {
		return 0
	}
	return min(x, y)
}

func evalAER(t *Topology, prev *AERSample, now time.Time, limit int) []Finding {
	if prev == nil {
		return nil
	}
	minutes := now.Sub(prev.Time).Minutes()
	if minutes < 1 {
		minutes = 1
	}
	var out []Finding
	for _, d := range t.Devices {
		if d.AER == nil {
			continue
		}
		base := prev.Counts[d.BDF]
		for _, c := range []struct {
			code     string
			kind     string
			cur, old uint64
			state    health.State
		}{
			{CodeAERCorrectable, "correctable", d.AER.Correctable.Total, base.Correctable, health.Warning},
			{CodeAERNonFatal, "non-fatal", d.AER.NonFatal.Total, base.NonFatal, health.Critical},
			{CodeAERFatal, "fatal", d.AER.Fatal.Total, base.Fatal, health.Critical},
		} {
			delta := c.cur
			if c.cur >= c.old {
				delta = c.cur - c.old
			}
			rate := float64(delta) / minutes
			if rate > float64(limit) {
				out = append(out, Finding{Subject: d.BDF, Code: c.code, State: c.state,
					Reason: fmt.Sprintf("%d %s AER errors on %s in %s (%.1f/min, limit %d/min)", delta, c.kind, d.BDF, now.Sub(prev.Time).Round(time.Second), rate, limit)})
			}
		}
	}
	return out
}

// slotNumberFromName falls back on the hotplug slot's name ("3", or "3-1"
// when another bus already has a slot 3) for ports whose config space
// could not be read.
func slotNumberFromName(t *Topology, port string) int {
	s := t.SlotFor(port)
	if s == nil {
		return 0
	}
	name, _, _ := strings.Cut(s.Name, "-")
	n, err := strconv.Atoi(name)
	if err != nil {
		return 0
	}
	return n
}

func sortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
