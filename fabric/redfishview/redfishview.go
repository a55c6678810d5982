// Package redfishview renders the PCIe fabric as DMTF Redfish resources:
// pure functions from a fabric.Topology and its findings to JSON objects
// keyed by URI. boardd's Redfish service serves them; this package does
// no HTTP.
//
// The model (after DMTF's CXL multi-switch mockup):
//
//	/redfish/v1/Fabrics/{fabric}                         Fabric, FabricType PCIe
//	  Switches/RootComplex/Ports/{bdf-id}                the root ports
//	  Switches/{switch}/Ports/UP                         a switch's upstream port
//	  Switches/{switch}/Ports/DP{slot}                   its downstream ports, by slot number
//	  Switches/.../Ports/{port}/Metrics                  PortMetrics with PCIeErrors (AER)
//	  Endpoints/{bdf-id}                                 what sits behind each downstream port
//	  Zones/All                                          one zone of every endpoint
//	/redfish/v1/Chassis/{chassis}/PCIeDevices/{dev-id}   every PCI device, with PCIeInterface
//	  PCIeFunctions/{n}                                  its functions
//
// Switch names come from the board config (the switch whose root_port is
// above the upstream port), else "SW-<bdf-id>". A bdf-id is the BDF with
// ':' and '.' turned into '-' ("0000-04-00-0").
//
// Speeds: Redfish's CurrentSpeedGbps and MaxSpeedGbps are the link's raw
// signalling rate, GT/s per lane times lanes (as the CXL mockup does).
package redfishview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/fabric"
)

// Root is the Redfish service root.
const Root = "/redfish/v1"

// RootComplex is the Id of the pseudo-switch holding the root ports.
const RootComplex = "RootComplex"

// View is what the resources are rendered from.
type View struct {
	Topology  *fabric.Topology
	Findings  []fabric.Finding
	Expected  *boardconfig.Fabric // may be nil
	ChassisID string
}

// FabricID is the fabric's Redfish Id (the config's, default "pcie").
func (v View) FabricID() string {
	if v.Expected != nil && v.Expected.ID != "" {
		return v.Expected.ID
	}
	return "pcie"
}

// ID turns a BDF (or bus:device) into a Redfish Id.
func ID(bdf string) string { return strings.NewReplacer(":", "-", ".", "-").Replace(bdf) }

type obj = map[string]any

func link(uri string) obj { return obj{"@odata.id": uri} }

func links(uris []string) []any {
	out := make([]any, 0, len(uris))
	for _, u := range uris {
		out = append(out, link(u))
	}
	return out
}

func collection(typ, uri, name string, members []string) obj {
	slices.Sort(members)
	return obj{
		"@odata.id":           uri,
		"@odata.type":         "#" + typ + "." + typ,
		"Name":                name,
		"Members":             links(members),
		"Members@odata.count": len(members),
	}
}

func healthName(s health.State) string {
	switch s {
	case health.Warning:
		return "Warning"
	case health.Critical:
		return "Critical"
	}
	return "OK"
}

// status is a Redfish Status with the worst health of the findings ok accepts.
func (v View) status(state string, ok func(fabric.Finding) bool) obj {
	h := health.OK
	for _, f := range v.Findings {
		if ok(f) {
			h = health.Worse(h, f.State)
		}
	}
	if h == health.Unavailable {
		h = health.OK
	}
	return obj{"State": state, "Health": healthName(h)}
}

// port is one Redfish Port and the function behind it.
type port struct {
	id, uri, sw string
	dev         *fabric.Device
	kind        string // UpstreamPort | DownstreamPort
	slot        int
}

type switchView struct {
	id, uri  string
	upstream *fabric.Device // nil for the root complex
	ports    []port
}

// model works out switches and ports from the topology.
func (v View) model() []switchView {
	t := v.Topology
	fab := Root + "/Fabrics/" + v.FabricID()
	rc := switchView{id: RootComplex, uri: fab + "/Switches/" + RootComplex}
	var sws []switchView
	for i := range t.Devices {
		d := &t.Devices[i]
		switch d.Type {
		case fabric.TypeRootPort:
			rc.ports = append(rc.ports, port{id: ID(d.BDF), sw: RootComplex, dev: d, kind: "DownstreamPort", slot: d.SlotNumber})
		case fabric.TypeUpstream:
			name := "SW-" + ID(d.BDF)
			if v.Expected != nil {
				for _, s := range v.Expected.Switches {
					if s.RootPort == d.Parent {
						name = s.Name
					}
				}
			}
			sw := switchView{id: name, uri: fab + "/Switches/" + name, upstream: d}
			sw.ports = append(sw.ports, port{id: "UP", sw: name, dev: d, kind: "UpstreamPort"})
			for _, c := range t.Children(d.BDF) {
				if c.Type != fabric.TypeDownstream {
					continue
				}
				id := "DP" + ID(c.BDF)
				if c.SlotNumber > 0 {
					id = fmt.Sprintf("DP%d", c.SlotNumber)
				}
				sw.ports = append(sw.ports, port{id: id, sw: name, dev: c, kind: "DownstreamPort", slot: c.SlotNumber})
			}
			sws = append(sws, sw)
		}
	}
	out := append([]switchView{rc}, sws...)
	for i := range out {
		for j := range out[i].ports {
			out[i].ports[j].uri = out[i].uri + "/Ports/" + out[i].ports[j].id
		}
	}
	return out
}

func gen(gts float64) string {
	switch {
	case gts >= 64:
		return "Gen6"
	case gts >= 32:
		return "Gen5"
	case gts >= 16:
		return "Gen4"
	case gts >= 8:
		return "Gen3"
	case gts >= 5:
		return "Gen2"
	case gts > 0:
		return "Gen1"
	}
	return ""
}

// Resets lists the ResetType values a port accepts.
var Resets = []string{"ForceRestart", "GracefulRestart", "ForceOff", "On", "PowerCycle"}

// Resources renders every resource: URI -> object. A nil topology gives
// nothing (the service then shows no Fabrics).
func Resources(v View) map[string]map[string]any {
	t := v.Topology
	if t == nil {
		return nil
	}
	out := map[string]map[string]any{}
	fabURI := Root + "/Fabrics/" + v.FabricID()
	out[Root+"/Fabrics"] = collection("FabricCollection", Root+"/Fabrics", "Fabrics", []string{fabURI})
	out[fabURI] = obj{
		"@odata.id":   fabURI,
		"@odata.type": "#Fabric.v1_4_0.Fabric",
		"Id":          v.FabricID(),
		"Name":        "PCIe fabric",
		"FabricType":  "PCIe",
		"Status":      v.status("Enabled", func(fabric.Finding) bool { return true }),
		"Switches":    link(fabURI + "/Switches"),
		"Endpoints":   link(fabURI + "/Endpoints"),
		"Zones":       link(fabURI + "/Zones"),
	}

	sws := v.model()
	portOf := map[string]string{} // BDF -> port URI
	for _, sw := range sws {
		for _, p := range sw.ports {
			portOf[p.dev.BDF] = p.uri
		}
	}
	// Endpoints: what sits behind the downstream ports.
	endpointOf := map[string]string{} // port BDF -> endpoint URI
	var endpoints []string
	for _, sw := range sws {
		if sw.upstream == nil {
			continue
		}
		for _, p := range sw.ports {
			if p.kind != "DownstreamPort" {
				continue
			}
			ch := t.Children(p.dev.BDF)
			if len(ch) == 0 {
				continue
			}
			d := ch[0]
			uri := fabURI + "/Endpoints/" + ID(d.BDF)
			endpointOf[p.dev.BDF] = uri
			endpoints = append(endpoints, uri)
			bdf := d.BDF
			out[uri] = obj{
				"@odata.id":        uri,
				"@odata.type":      "#Endpoint.v1_8_2.Endpoint",
				"Id":               ID(d.BDF),
				"Name":             fmt.Sprintf("%s in %s port %s", kindName(d), sw.id, p.id),
				"EndpointProtocol": "PCIe",
				"ConnectedEntities": []any{obj{
					"EntityType": entityType(d.Class),
					"EntityRole": "Target",
					"EntityLink": link(deviceURI(v.ChassisID, d.BDF)),
				}},
				"Status": v.status("Enabled", func(f fabric.Finding) bool { return f.Subject == bdf }),
				"Links":  obj{"ConnectedPorts": links([]string{p.uri})},
			}
		}
	}
	out[fabURI+"/Endpoints"] = collection("EndpointCollection", fabURI+"/Endpoints", "Endpoints", endpoints)
	zone := fabURI + "/Zones/All"
	out[fabURI+"/Zones"] = collection("ZoneCollection", fabURI+"/Zones", "Zones", []string{zone})
	out[zone] = obj{
		"@odata.id":   zone,
		"@odata.type": "#Zone.v1_6_3.Zone",
		"Id":          "All",
		"Name":        "Every endpoint of the fabric",
		"ZoneType":    "ZoneOfEndpoints",
		"Status":      obj{"State": "Enabled", "Health": "OK"},
		"Links":       obj{"Endpoints": links(slices.Sorted(slices.Values(endpoints)))},
	}

	// Switches and ports.
	var swURIs []string
	for _, sw := range sws {
		swURIs = append(swURIs, sw.uri)
		var portURIs []string
		bdfs := map[string]bool{}
		for _, p := range sw.ports {
			portURIs = append(portURIs, p.uri)
			bdfs[p.dev.BDF] = true
		}
		swName := sw.id
		s := obj{
			"@odata.id":          sw.uri,
			"@odata.type":        "#Switch.v1_11_0.Switch",
			"Id":                 sw.id,
			"SwitchType":         "PCIe",
			"SupportedProtocols": []string{"PCIe"},
			"Ports":              link(sw.uri + "/Ports"),
			"Status": v.status("Enabled", func(f fabric.Finding) bool {
				return (f.Switch == swName && sw.upstream != nil) || bdfs[f.Subject]
			}),
		}
		if sw.upstream == nil {
			s["Name"] = "PCIe root complex"
		} else {
			s["Name"] = fmt.Sprintf("PCIe switch %s", sw.id)
			if sw.upstream.Name != "" {
				s["Model"] = sw.upstream.Name
			}
			if sw.upstream.Vendor != "" {
				s["Manufacturer"] = sw.upstream.Vendor
			}
		}
		out[sw.uri] = s
		out[sw.uri+"/Ports"] = collection("PortCollection", sw.uri+"/Ports", "Ports of "+sw.id, portURIs)
		for _, p := range sw.ports {
			out[p.uri] = v.portObj(sw, p, portOf, endpointOf)
			out[p.uri+"/Metrics"] = portMetrics(p)
		}
	}
	out[fabURI+"/Switches"] = collection("SwitchCollection", fabURI+"/Switches", "Switches", swURIs)

	// Chassis PCIe devices.
	if v.ChassisID != "" {
		devs := map[string][]*fabric.Device{}
		for i := range t.Devices {
			d := &t.Devices[i]
			k := d.BDF[:len(d.BDF)-2]
			devs[k] = append(devs[k], d)
		}
		var uris []string
		for k, fns := range devs {
			uri := deviceURI(v.ChassisID, fns[0].BDF)
			uris = append(uris, uri)
			v.pcieDevice(out, uri, k, fns)
		}
		coll := Root + "/Chassis/" + v.ChassisID + "/PCIeDevices"
		out[coll] = collection("PCIeDeviceCollection", coll, "PCIe devices", uris)
	}
	return out
}

func deviceURI(chassis, bdf string) string {
	return Root + "/Chassis/" + chassis + "/PCIeDevices/" + ID(bdf[:len(bdf)-2])
}

func (v View) portObj(sw switchView, p port, portOf, endpointOf map[string]string) obj {
	t := v.Topology
	d := p.dev
	o := obj{
		"@odata.id":    p.uri,
		"@odata.type":  "#Port.v1_18_0.Port",
		"Id":           p.id,
		"Name":         fmt.Sprintf("%s %s (%s)", sw.id, p.id, d.BDF),
		"PortId":       d.BDF,
		"PortProtocol": "PCIe",
		"PortType":     p.kind,
		"PortMedium":   "Electrical",
		"Metrics":      link(p.uri + "/Metrics"),
	}
	up := true
	if p.kind == "DownstreamPort" {
		up = t.LinkUp(d.BDF)
	}
	if l := d.Link; l != nil {
		if l.MaxWidth > 0 {
			o["Width"] = l.MaxWidth
		}
		if l.MaxSpeed > 0 && l.MaxWidth > 0 {
			o["MaxSpeedGbps"] = l.MaxSpeed * float64(l.MaxWidth)
		}
		if up {
			o["ActiveWidth"] = l.Width
			o["CurrentSpeedGbps"] = l.Speed * float64(l.Width)
		} else {
			o["ActiveWidth"] = 0
			o["CurrentSpeedGbps"] = 0
		}
	}
	if up {
		o["LinkStatus"] = "LinkUp"
	} else {
		o["LinkStatus"] = "NoLink"
	}
	o["LinkState"] = "Enabled"
	o["InterfaceEnabled"] = true
	bdf, slot, swName := d.BDF, p.slot, sw.id
	o["Status"] = v.status("Enabled", func(f fabric.Finding) bool {
		if f.Subject == bdf {
			return true
		}
		if p.kind == "DownstreamPort" && sw.upstream != nil && slot > 0 && f.Switch == swName && f.Port == slot {
			return true
		}
		// AER and link findings about what is behind the port.
		for _, c := range t.Children(bdf) {
			if p.kind == "DownstreamPort" && f.Subject == c.BDF {
				return true
			}
		}
		return false
	})
	var connected []string
	switch {
	case p.kind == "UpstreamPort":
		if u, ok := portOf[d.Parent]; ok {
			connected = append(connected, u)
		}
	default:
		for _, c := range t.Children(d.BDF) {
			if u, ok := portOf[c.BDF]; ok {
				connected = append(connected, u)
			}
		}
	}
	lk := obj{"ConnectedPorts": links(connected)}
	if e, ok := endpointOf[d.BDF]; ok {
		lk["AssociatedEndpoints"] = links([]string{e})
	}
	o["Links"] = lk
	if p.kind == "DownstreamPort" {
		o["Actions"] = obj{"#Port.Reset": obj{
			"target":                            p.uri + "/Actions/Port.Reset",
			"ResetType@Redfish.AllowableValues": Resets,
		}}
	}
	return o
}

func portMetrics(p port) obj {
	o := obj{
		"@odata.id":   p.uri + "/Metrics",
		"@odata.type": "#PortMetrics.v1_8_1.PortMetrics",
		"Id":          "Metrics",
		"Name":        "Metrics of port " + p.id,
	}
	if a := p.dev.AER; a != nil {
		o["PCIeErrors"] = obj{
			"CorrectableErrorCount": a.Correctable.Total,
			"NonFatalErrorCount":    a.NonFatal.Total,
			"FatalErrorCount":       a.Fatal.Total,
		}
	}
	return o
}

func (v View) pcieDevice(out map[string]map[string]any, uri, key string, fns []*fabric.Device) {
	f0 := fns[0]
	bdfs := map[string]bool{}
	var fnURIs []string
	for _, f := range fns {
		bdfs[f.BDF] = true
		fu := fmt.Sprintf("%s/PCIeFunctions/%d", uri, f.Function())
		fnURIs = append(fnURIs, fu)
		fo := obj{
			"@odata.id":         fu,
			"@odata.type":       "#PCIeFunction.v1_7_0.PCIeFunction",
			"Id":                fmt.Sprint(f.Function()),
			"Name":              fmt.Sprintf("Function %d of %s", f.Function(), key),
			"FunctionId":        f.Function(),
			"FunctionType":      "Physical",
			"ClassCode":         fmt.Sprintf("0x%06x", f.Class),
			"DeviceClass":       deviceClass(f.Class),
			"VendorId":          fmt.Sprintf("0x%04x", f.VendorID),
			"DeviceId":          fmt.Sprintf("0x%04x", f.DeviceID),
			"SubsystemVendorId": fmt.Sprintf("0x%04x", f.SubVendorID),
			"SubsystemId":       fmt.Sprintf("0x%04x", f.SubDeviceID),
			"RevisionId":        fmt.Sprintf("0x%02x", f.Revision),
			"Links":             obj{"PCIeDevice": link(uri)},
		}
		bdf := f.BDF
		fo["Status"] = v.status("Enabled", func(x fabric.Finding) bool { return x.Subject == bdf })
		out[fu] = fo
	}
	typ := "SingleFunction"
	if len(fns) > 1 {
		typ = "MultiFunction"
	}
	o := obj{
		"@odata.id":     uri,
		"@odata.type":   "#PCIeDevice.v1_21_0.PCIeDevice",
		"Id":            ID(key),
		"Name":          firstNonEmpty(f0.Name, f0.ClassName, key),
		"DeviceType":    typ,
		"PCIeFunctions": link(uri + "/PCIeFunctions"),
		"Status":        v.status("Enabled", func(x fabric.Finding) bool { return bdfs[x.Subject] }),
	}
	if f0.Vendor != "" {
		o["Manufacturer"] = f0.Vendor
	}
	if f0.Name != "" {
		o["Model"] = f0.Name
	}
	if l := f0.Link; l != nil {
		pi := obj{}
		if g := gen(l.Speed); g != "" {
			pi["PCIeType"] = g
		}
		if g := gen(l.MaxSpeed); g != "" {
			pi["MaxPCIeType"] = g
		}
		pi["LanesInUse"] = l.Width
		if l.MaxWidth > 0 {
			pi["MaxLanes"] = l.MaxWidth
		}
		o["PCIeInterface"] = pi
	}
	out[uri] = o
	out[uri+"/PCIeFunctions"] = collection("PCIeFunctionCollection", uri+"/PCIeFunctions", "Functions of "+key, fnURIs)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func kindName(d *fabric.Device) string {
	if d.Name != "" {
		return d.Name
	}
	return fmt.Sprintf("class %06x device", d.Class)
}

// deviceClass maps a PCI base class to Redfish's DeviceClass.
func deviceClass(class uint32) string {
	classes := []string{"UnclassifiedDevice", "MassStorageController", "NetworkController", "DisplayController",
		"MultimediaController", "MemoryController", "Bridge", "CommunicationController", "GenericSystemPeripheral",
		"InputDeviceController", "DockingStation", "Processor", "SerialBusController", "WirelessController",
		"IntelligentController", "SatelliteCommunicationsController", "EncryptionController",
		"SignalProcessingController", "ProcessingAccelerators", "NonEssentialInstrumentation"}
	b := int(class >> 16)
	switch {
	case b < len(classes):
		return classes[b]
	case b == 0x40:
		return "Coprocessor"
	case b == 0xff:
		return "UnassignedClass"
	}
	return "Other"
}

// entityType maps a class to an Endpoint's EntityType.
func entityType(class uint32) string {
	switch {
	case class>>16 == 0x01:
		return "StorageSubsystem"
	case class>>16 == 0x02:
		return "NetworkController"
	case class>>16 == 0x03:
		return "DisplayController"
	case class>>16 == 0x06:
		return "Bridge"
	case class>>16 == 0x0b:
		return "Processor"
	case class>>16 == 0x12:
		return "AccelerationFunction"
	}
	return "Processor"
}

// ErrBadRequest marks an action error caused by the request (unknown
// port, bad ResetType); boardd's Redfish service answers it with 400.
var ErrBadRequest = errors.New("bad request")

// ResetTargets maps each Port.Reset action URI to the BDF of its port.
func ResetTargets(v View) map[string]string {
	out := map[string]string{}
	if v.Topology == nil {
		return out
	}
	for _, sw := range v.model() {
		for _, p := range sw.ports {
			if p.kind == "DownstreamPort" {
				out[p.uri+"/Actions/Port.Reset"] = p.dev.BDF
			}
		}
	}
	return out
}

// Reset carries out Port.Reset on the port bdf with the request body's
// ResetType:
//
//	ForceRestart (the default)  secondary bus reset below the port
//	GracefulRestart             retrain the link (Link Control's Retrain Link)
//	ForceOff                    power the port's slot off
//	On                          power the slot on and rescan below the port
//	PowerCycle                  off, then on and rescan
func Reset(ctx context.Context, a *fabric.Actions, topo *fabric.Topology, bdf string, body map[string]any) error {
	rt := "ForceRestart"
	if v, ok := body["ResetType"]; ok {
		s, isStr := v.(string)
		if !isStr || !slices.Contains(Resets, s) {
			return fmt.Errorf("%w: ResetType %v: want one of %s", ErrBadRequest, v, strings.Join(Resets, ", "))
		}
		rt = s
	}
	if topo.Device(bdf) == nil {
		return fmt.Errorf("%w: port %s is not on the bus", ErrBadRequest, bdf)
	}
	on := func() error {
		if err := a.PortPower(ctx, topo, bdf, true); err != nil {
			return err
		}
		return a.Rescan(ctx, bdf)
	}
	switch rt {
	case "GracefulRestart":
		return a.Retrain(ctx, bdf)
	case "ForceOff":
		return a.PortPower(ctx, topo, bdf, false)
	case "On":
		return on()
	case "PowerCycle":
		if err := a.PortPower(ctx, topo, bdf, false); err != nil {
			return err
		}
		return on()
	}
	return a.ResetPort(ctx, bdf)
}

// ConfiguredResetTargets lists the Port.Reset action URIs of the ports the
// board config names (each switch's downstream ports, by slot number), so
// a service that registers its actions once, before the first scan, has
// them all. ResetTargets resolves one to a BDF at call time.
func ConfiguredResetTargets(expected *boardconfig.Fabric) []string {
	if expected == nil {
		return nil
	}
	fab := Root + "/Fabrics/" + View{Expected: expected}.FabricID() + "/Switches/"
	var out []string
	for _, sw := range expected.Switches {
		for _, p := range sw.Ports {
			out = append(out, fmt.Sprintf("%s%s/Ports/DP%d/Actions/Port.Reset", fab, sw.Name, p.Port))
		}
	}
	return out
}
