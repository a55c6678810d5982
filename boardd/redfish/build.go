package redfish

import (
	"crypto/sha1"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/boardd/auth"
	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
)

// Schema versions served (DMTF schema bundle 2025.4).
const (
	tServiceRoot          = "#ServiceRoot.v1_20_0.ServiceRoot"
	tChassisCollection    = "#ChassisCollection.ChassisCollection"
	tChassis              = "#Chassis.v1_28_0.Chassis"
	tSensorCollection     = "#SensorCollection.SensorCollection"
	tSensor               = "#Sensor.v1_12_0.Sensor"
	tPowerSubsystem       = "#PowerSubsystem.v1_1_3.PowerSubsystem"
	tPowerSupplyColl      = "#PowerSupplyCollection.PowerSupplyCollection"
	tPowerSupply          = "#PowerSupply.v1_6_0.PowerSupply"
	tPowerSupplyMetrics   = "#PowerSupplyMetrics.v1_2_0.PowerSupplyMetrics"
	tThermalSubsystem     = "#ThermalSubsystem.v1_5_0.ThermalSubsystem"
	tThermalMetrics       = "#ThermalMetrics.v1_3_2.ThermalMetrics"
	tFanCollection        = "#FanCollection.FanCollection"
	tFan                  = "#Fan.v1_6_0.Fan"
	tEnvironmentMetrics   = "#EnvironmentMetrics.v1_5_0.EnvironmentMetrics"
	tThermalEquipment     = "#ThermalEquipment.v1_2_0.ThermalEquipment"
	tCoolingUnitColl      = "#CoolingUnitCollection.CoolingUnitCollection"
	tCoolingUnit          = "#CoolingUnit.v1_5_0.CoolingUnit"
	tPumpCollection       = "#PumpCollection.PumpCollection"
	tPump                 = "#Pump.v1_2_0.Pump"
	tLeakDetection        = "#LeakDetection.v1_2_0.LeakDetection"
	tLeakDetectorColl     = "#LeakDetectorCollection.LeakDetectorCollection"
	tLeakDetector         = "#LeakDetector.v1_6_0.LeakDetector"
	tManagerCollection    = "#ManagerCollection.ManagerCollection"
	tManager              = "#Manager.v1_24_0.Manager"
	tNetworkProtocol      = "#ManagerNetworkProtocol.v1_12_0.ManagerNetworkProtocol"
	tLogServiceColl       = "#LogServiceCollection.LogServiceCollection"
	tLogService           = "#LogService.v1_9_0.LogService"
	tLogEntryColl         = "#LogEntryCollection.LogEntryCollection"
	tLogEntry             = "#LogEntry.v1_21_0.LogEntry"
	tEventService         = "#EventService.v1_12_0.EventService"
	tEventDestColl        = "#EventDestinationCollection.EventDestinationCollection"
	tEventDest            = "#EventDestination.v1_16_0.EventDestination"
	tSessionService       = "#SessionService.v1_2_0.SessionService"
	tSessionColl          = "#SessionCollection.SessionCollection"
	tSession              = "#Session.v1_8_0.Session"
	tAccountService       = "#AccountService.v1_18_1.AccountService"
	tAccountColl          = "#ManagerAccountCollection.ManagerAccountCollection"
	tAccount              = "#ManagerAccount.v1_14_1.ManagerAccount"
	tRoleColl             = "#RoleCollection.RoleCollection"
	tRole                 = "#Role.v1_3_3.Role"
	tRegistryFileColl     = "#MessageRegistryFileCollection.MessageRegistryFileCollection"
	tRegistryFile         = "#MessageRegistryFile.v1_1_5.MessageRegistryFile"
	tEvent                = "#Event.v1_13_0.Event"
	redfishVersion        = "1.22.0"
	managerID             = "boardd"
	immersionUnitID       = "1"
	psuID                 = "DCDC"
	maxLogEntriesInMemory = 1000
)

const (
	root       = "/redfish/v1"
	uriChassis = root + "/Chassis"
	uriManager = root + "/Managers/" + managerID
	uriEvents  = root + "/EventService"
	uriSSE     = uriEvents + "/SSE"
	uriSubs    = uriEvents + "/Subscriptions"
	uriSubmit  = uriEvents + "/Actions/EventService.SubmitTestEvent"
	uriSession = root + "/SessionService"
	uriSess    = uriSession + "/Sessions"
	uriAcctSvc = root + "/AccountService"
	uriAccts   = uriAcctSvc + "/Accounts"
	uriRoles   = uriAcctSvc + "/Roles"
	uriRegs    = root + "/Registries"
	uriThermEq = root + "/ThermalEquipment"
	uriImm     = uriThermEq + "/ImmersionUnits/" + immersionUnitID
)

// buildInput is everything a resource tree is built from.
type buildInput struct {
	snap      *snapshot.Snapshot
	cfg       *boardconfig.Config
	version   string
	hostname  string
	httpsPort int
	accounts  []auth.Account
	sessions  []auth.Session
	timeout   time.Duration
	evsvc     eventServiceSettings
	subs      []subscriptionView
	log       []events.Event
	sel       selState
	extra     []Tree
	// keys receives, for immutable resources (log entries), a string that
	// changes whenever the resource does: render reuses their bytes.
	keys map[string]string
	// have reports whether the resource at uri with this key is already
	// rendered; build then leaves it nil.
	have func(uri, key string) bool
}

type selState struct {
	entries []bmc.SELEntry
	err     string
	at      time.Time
	enabled bool
}

type obj = map[string]any

func link(u string) obj { return obj{"@odata.id": u} }

func links(us ...string) []any {
	out := make([]any, 0, len(us))
	for _, u := range us {
		out = append(out, link(u))
	}
	return out
}

func collection(typ, uri, name string, members []string) obj {
	return obj{
		"@odata.type":         typ,
		"@odata.id":           uri,
		"Name":                name,
		"Members":             links(members...),
		"Members@odata.count": len(members),
	}
}

func resource(typ, uri, id, name string) obj {
	return obj{"@odata.type": typ, "@odata.id": uri, "Id": id, "Name": name}
}

var idRe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// segment makes a string safe as one URI segment and Redfish Id.
func segment(s string) string {
	if s == "" {
		return "_"
	}
	return idRe.ReplaceAllString(s, "_")
}

func healthOf(st health.State) any {
	switch st {
	case health.OK:
		return "OK"
	case health.Warning:
		return "Warning"
	case health.Critical:
		return "Critical"
	}
	return nil
}

func severityOf(st health.State) string {
	switch st {
	case health.Critical:
		return "Critical"
	case health.Warning, health.Unavailable:
		return "Warning"
	}
	return "OK"
}

func status(st health.State, rollup *health.State) obj {
	s := obj{"State": "Enabled", "Health": healthOf(st)}
	if st == health.Unavailable {
		s["State"] = "UnavailableOffline"
	}
	if rollup != nil {
		s["HealthRollup"] = healthOf(*rollup)
	}
	return s
}

// stableUUID derives a name-based UUID (RFC 9562 version 5 layout) from
// the board id, so it survives restarts.
func stableUUID(name string) string {
	h := sha1.Sum([]byte("podos.dev/boardd/" + name))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// sensorRole is what a sensor is to the board: the board config's role
// when it names the sensor, else a guess from its class and name.
func sensorRole(cfg *boardconfig.Config, s snapshot.Sensor) boardconfig.Role {
	r := health.RoleOf(s.Def, cfg.Sensor(s.Def.Name))
	if r != boardconfig.RoleOther && r != boardconfig.RoleTemp {
		return r
	}
	// Not named by the config: guess from the BMC's name.
	name := strings.ToLower(s.Def.Name)
	switch s.Def.Class {
	case bmc.ClassTemperature:
		switch {
		case strings.Contains(name, "oil"):
			return boardconfig.RoleTempOil
		case strings.Contains(name, "inlet"):
			return boardconfig.RoleTempInlet
		case strings.Contains(name, "cpu"):
			return boardconfig.RoleTempCPU
		}
	case bmc.ClassVoltage, bmc.ClassCurrent, bmc.ClassPower:
		if s.Subsystem == health.Power {
			if strings.Contains(name, "in") {
				return boardconfig.RolePSUInput
			}
			return boardconfig.RolePSUOutput
		}
	}
	return r
}

func physicalContext(role boardconfig.Role) string {
	switch role {
	case boardconfig.RolePSUInput, boardconfig.RolePSUOutput, boardconfig.RolePSUStatus:
		return "PowerSupply"
	case boardconfig.RoleFuse:
		return "PowerSubsystem"
	case boardconfig.RoleTempOil:
		return "CoolingSubsystem"
	case boardconfig.RoleTempInlet:
		return "LiquidInlet"
	case boardconfig.RoleTempCPU:
		return "CPU"
	case boardconfig.RolePump:
		return "Pump"
	case boardconfig.RoleFan:
		return "Fan"
	case boardconfig.RoleLeak:
		return "Chassis"
	}
	return "SystemBoard"
}

func readingType(d bmc.SensorDef) string {
	switch d.Unit {
	case bmc.UnitVolts:
		return "Voltage"
	case bmc.UnitAmperes:
		return "Current"
	case bmc.UnitWatts:
		return "Power"
	case bmc.UnitCelsius:
		return "Temperature"
	case bmc.UnitRPM:
		return "Rotational"
	case bmc.UnitPercent:
		return "Percent"
	}
	return ""
}

func round(v float64) float64 {
	// Readings come from 8-bit conversions: three decimals are plenty and
	// keep the JSON short.
	x, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 3, 64), 64)
	return x
}

func readingOf(s snapshot.Sensor) any {
	if !s.Reading.Available || s.Def.Kind == bmc.KindDiscrete {
		return nil
	}
	return round(s.Reading.Value)
}

// sensorView is a sensor with its URI and role.
type sensorView struct {
	s    snapshot.Sensor
	id   string
	uri  string
	role boardconfig.Role
}

func chassisID(in buildInput) string {
	if in.snap != nil && in.snap.Board.ID != "" {
		return segment(in.snap.Board.ID)
	}
	if in.cfg != nil && in.cfg.Board.ID != "" {
		return segment(in.cfg.Board.ID)
	}
	return "board"
}

// build returns every resource of the service, by URI.
func build(in buildInput, regs registries) map[string]obj {
	t := map[string]obj{}
	snap := in.snap
	if snap == nil {
		snap = &snapshot.Snapshot{}
	}
	cid := chassisID(in)
	curi := uriChassis + "/" + cid
	model := snap.Board.Model
	if model == "" && in.cfg != nil {
		model = in.cfg.Board.Model
	}
	slot := snap.Board.Slot
	if slot == 0 && in.cfg != nil {
		slot = in.cfg.Board.Slot
	}

	// Sensors.
	var sensors []sensorView
	seen := map[string]bool{}
	for _, s := range snap.Sensors {
		id := segment(s.Def.ID)
		for seen[id] {
			id += "_"
		}
		seen[id] = true
		sensors = append(sensors, sensorView{s: s, id: id, uri: curi + "/Sensors/" + id, role: sensorRole(in.cfg, s)})
	}
	byRole := func(roles ...boardconfig.Role) []sensorView {
		var out []sensorView
		for _, v := range sensors {
			for _, r := range roles {
				if v.role == r {
					out = append(out, v)
				}
			}
		}
		return out
	}
	sub := func(ss ...health.Subsystem) health.State {
		st := health.OK
		for _, x := range ss {
			if r, ok := snap.Subsystems[x]; ok {
				st = health.Worse(st, r.State)
			}
		}
		return st
	}
	board := snap.Health.State

	// Service root and its top-level collections.
	rootObj := resource(tServiceRoot, root, "RootService", "podos boardd Redfish service")
	rootObj["RedfishVersion"] = redfishVersion
	rootObj["UUID"] = stableUUID(cid)
	rootObj["Vendor"] = "podos"
	rootObj["Product"] = "boardd"
	rootObj["ProtocolFeaturesSupported"] = obj{
		"ExpandQuery":                   obj{"ExpandAll": true, "Levels": true, "Links": true, "NoLinks": true, "MaxLevels": maxExpandLevels},
		"SelectQuery":                   true,
		"FilterQuery":                   false,
		"OnlyMemberQuery":               true,
		"TopSkipQuery":                  true,
		"ExcerptQuery":                  false,
		"IncludeOriginOfConditionQuery": false,
		"DeepOperations":                obj{"DeepPATCH": false, "DeepPOST": false},
		"MultipleHTTPRequests":          true,
	}
	rootObj["Chassis"] = link(uriChassis)
	rootObj["Managers"] = link(root + "/Managers")
	rootObj["EventService"] = link(uriEvents)
	rootObj["SessionService"] = link(uriSession)
	rootObj["AccountService"] = link(uriAcctSvc)
	rootObj["Registries"] = link(uriRegs)
	rootObj["ThermalEquipment"] = link(uriThermEq)
	rootObj["Links"] = obj{"Sessions": link(uriSess)}
	t[root] = rootObj

	// Chassis.
	t[uriChassis] = collection(tChassisCollection, uriChassis, "Chassis Collection", []string{curi})
	ch := resource(tChassis, curi, cid, "Blade "+cid)
	ch["ChassisType"] = "Blade"
	if model != "" {
		ch["Model"] = model
	}
	ch["UUID"] = stableUUID(cid)
	ch["PowerState"] = "On"
	rollup := board
	ch["Status"] = status(health.OK, &rollup)
	if slot > 0 {
		ch["Location"] = obj{"PartLocation": obj{"LocationType": "Slot", "LocationOrdinalValue": slot, "ServiceLabel": "Slot " + strconv.Itoa(slot)}}
	}
	ch["Sensors"] = link(curi + "/Sensors")
	ch["PowerSubsystem"] = link(curi + "/PowerSubsystem")
	ch["ThermalSubsystem"] = link(curi + "/ThermalSubsystem")
	ch["EnvironmentMetrics"] = link(curi + "/EnvironmentMetrics")
	ch["Links"] = obj{
		"ManagedBy":    links(uriManager),
		"CoolingUnits": links(uriImm),
	}
	t[curi] = ch

	var sensorURIs []string
	for _, v := range sensors {
		sensorURIs = append(sensorURIs, v.uri)
		o := resource(tSensor, v.uri, v.id, v.s.Def.Name)
		if rt := readingType(v.s.Def); rt != "" && v.s.Def.Kind != bmc.KindDiscrete {
			o["ReadingType"] = rt
			o["ReadingUnits"] = string(v.s.Def.Unit)
			o["Reading"] = readingOf(v.s)
		}
		st := status(v.s.State, nil)
		o["Status"] = st
		o["PhysicalContext"] = physicalContext(v.role)
		if !v.s.Reading.Time.IsZero() {
			o["ReadingTime"] = v.s.Reading.Time.UTC().Format(time.RFC3339)
		}
		if th := thresholds(v.s.Thresholds); len(th) > 0 && v.s.Def.Kind != bmc.KindDiscrete {
			o["Thresholds"] = th
		}
		if v.s.Reason != "" {
			o["Description"] = v.s.Reason
		}
		t[v.uri] = o
	}
	t[curi+"/Sensors"] = collection(tSensorCollection, curi+"/Sensors", "Sensors", sensorURIs)

	// Power: one power supply, the blade's DC/DC feed.
	pw := sub(health.Power, health.Fuses)
	ps := resource(tPowerSubsystem, curi+"/PowerSubsystem", "PowerSubsystem", "Power Subsystem")
	ps["Status"] = status(health.OK, &pw)
	ps["PowerSupplies"] = link(curi + "/PowerSubsystem/PowerSupplies")
	t[curi+"/PowerSubsystem"] = ps
	psuURI := curi + "/PowerSubsystem/PowerSupplies/" + psuID
	t[curi+"/PowerSubsystem/PowerSupplies"] = collection(tPowerSupplyColl, curi+"/PowerSubsystem/PowerSupplies", "Power Supplies", []string{psuURI})
	psu := resource(tPowerSupply, psuURI, psuID, "Blade DC/DC feed")
	psu["PowerSupplyType"] = "DCRegulator"
	psuHealth := sub(health.Power)
	for _, v := range byRole(boardconfig.RolePSUStatus) {
		psuHealth = health.Worse(psuHealth, v.s.State)
	}
	psu["Status"] = status(psuHealth, nil)
	psu["Metrics"] = link(psuURI + "/Metrics")
	t[psuURI] = psu
	m := resource(tPowerSupplyMetrics, psuURI+"/Metrics", "Metrics", "DC/DC feed metrics")
	m["Status"] = status(psuHealth, nil)
	var railV, railA, railW []any
	var outV, outA *float64
	for _, v := range byRole(boardconfig.RolePSUInput, boardconfig.RolePSUOutput) {
		ex := obj{"Reading": readingOf(v.s), "DataSourceUri": v.uri}
		in := v.role == boardconfig.RolePSUInput
		switch v.s.Def.Unit {
		case bmc.UnitVolts:
			if in {
				if _, ok := m["InputVoltage"]; !ok {
					m["InputVoltage"] = ex
				}
			} else {
				railV = append(railV, ex)
				if r, ok := ex["Reading"].(float64); ok && outV == nil {
					outV = &r
				}
			}
		case bmc.UnitAmperes:
			if in {
				if _, ok := m["InputCurrentAmps"]; !ok {
					m["InputCurrentAmps"] = ex
				}
			} else {
				railA = append(railA, ex)
				if r, ok := ex["Reading"].(float64); ok && outA == nil {
					outA = &r
				}
			}
		case bmc.UnitWatts:
			if in {
				if _, ok := m["InputPowerWatts"]; !ok {
					m["InputPowerWatts"] = ex
				}
			} else {
				railW = append(railW, ex)
				if _, ok := m["OutputPowerWatts"]; !ok {
					m["OutputPowerWatts"] = ex
				}
			}
		}
	}
	if _, ok := m["OutputPowerWatts"]; !ok && outV != nil && outA != nil {
		// No output power sensor: the product of the first rail's
		// voltage and current (no DataSourceUri: it is derived).
		m["OutputPowerWatts"] = obj{"Reading": round(*outV * *outA)}
	}
	if railV != nil {
		m["RailVoltage"] = railV
		m["RailVoltage@odata.count"] = len(railV)
	}
	if railA != nil {
		m["RailCurrentAmps"] = railA
		m["RailCurrentAmps@odata.count"] = len(railA)
	}
	if railW != nil {
		m["RailPowerWatts"] = railW
		m["RailPowerWatts@odata.count"] = len(railW)
	}
	t[psuURI+"/Metrics"] = m

	// Thermal.
	th := sub(health.Thermal, health.Cooling)
	ts := resource(tThermalSubsystem, curi+"/ThermalSubsystem", "ThermalSubsystem", "Thermal Subsystem")
	ts["Status"] = status(health.OK, &th)
	ts["ThermalMetrics"] = link(curi + "/ThermalSubsystem/ThermalMetrics")
	ts["Fans"] = link(curi + "/ThermalSubsystem/Fans")
	t[curi+"/ThermalSubsystem"] = ts
	tm := resource(tThermalMetrics, curi+"/ThermalSubsystem/ThermalMetrics", "ThermalMetrics", "Thermal Metrics")
	var temps []any
	summary := obj{}
	for _, v := range sensors {
		if v.s.Def.Unit != bmc.UnitCelsius {
			continue
		}
		ex := obj{"Reading": readingOf(v.s), "DataSourceUri": v.uri, "DeviceName": v.s.Def.Name, "PhysicalContext": physicalContext(v.role)}
		temps = append(temps, ex)
		short := obj{"Reading": readingOf(v.s), "DataSourceUri": v.uri}
		switch v.role {
		case boardconfig.RoleTempOil:
			if _, ok := summary["Internal"]; !ok {
				summary["Internal"] = short
			}
		case boardconfig.RoleTempInlet:
			if _, ok := summary["Intake"]; !ok {
				summary["Intake"] = short
			}
		}
	}
	if temps == nil {
		temps = []any{}
	}
	tm["TemperatureReadingsCelsius"] = temps
	tm["TemperatureReadingsCelsius@odata.count"] = len(temps)
	tm["TemperatureSummaryCelsius"] = summary
	t[curi+"/ThermalSubsystem/ThermalMetrics"] = tm
	var fanURIs []string
	for i, v := range byRole(boardconfig.RoleFan) {
		u := curi + "/ThermalSubsystem/Fans/" + v.id
		fanURIs = append(fanURIs, u)
		f := resource(tFan, u, v.id, v.s.Def.Name)
		f["Status"] = status(v.s.State, nil)
		f["SpeedPercent"] = speedExcerpt(v)
		f["Location"] = obj{"PartLocation": obj{"LocationType": "Bay", "LocationOrdinalValue": i, "ServiceLabel": v.s.Def.Name}}
		t[u] = f
	}
	t[curi+"/ThermalSubsystem/Fans"] = collection(tFanCollection, curi+"/ThermalSubsystem/Fans", "Fans", fanURIs)

	env := resource(tEnvironmentMetrics, curi+"/EnvironmentMetrics", "EnvironmentMetrics", "Blade environment")
	if v := firstWith(byRole(boardconfig.RoleTempOil), bmc.UnitCelsius); v != nil {
		env["TemperatureCelsius"] = obj{"Reading": readingOf(v.s), "DataSourceUri": v.uri}
	}
	if v := firstWith(byRole(boardconfig.RolePSUInput), bmc.UnitWatts); v != nil {
		env["PowerWatts"] = obj{"Reading": readingOf(v.s), "DataSourceUri": v.uri}
	} else if v := firstWith(byRole(boardconfig.RolePSUOutput), bmc.UnitWatts); v != nil {
		env["PowerWatts"] = obj{"Reading": readingOf(v.s), "DataSourceUri": v.uri}
	}
	t[curi+"/EnvironmentMetrics"] = env

	// Immersion cooling (DMTF liquid-cooling model; see DESIGN.md).
	cool := sub(health.Cooling)
	te := resource(tThermalEquipment, uriThermEq, "ThermalEquipment", "Thermal Equipment")
	te["Status"] = status(health.OK, &cool)
	te["ImmersionUnits"] = link(uriThermEq + "/ImmersionUnits")
	t[uriThermEq] = te
	t[uriThermEq+"/ImmersionUnits"] = collection(tCoolingUnitColl, uriThermEq+"/ImmersionUnits", "Immersion Units", []string{uriImm})
	cu := resource(tCoolingUnit, uriImm, immersionUnitID, "RuggedPOD immersion tank (as seen by blade "+cid+")")
	cu["EquipmentType"] = "ImmersionUnit"
	cu["Status"] = status(health.OK, &cool)
	cu["Coolant"] = obj{"CoolantType": "Dielectric"}
	cu["Pumps"] = link(uriImm + "/Pumps")
	cu["LeakDetection"] = link(uriImm + "/LeakDetection")
	cu["Links"] = obj{"Chassis": links(curi), "ManagedBy": links(uriManager)}
	t[uriImm] = cu
	var pumpURIs []string
	for _, v := range byRole(boardconfig.RolePump) {
		u := uriImm + "/Pumps/" + v.id
		pumpURIs = append(pumpURIs, u)
		p := resource(tPump, u, v.id, v.s.Def.Name)
		p["PumpType"] = "Liquid"
		p["Status"] = status(v.s.State, nil)
		p["PumpSpeedPercent"] = speedExcerpt(v)
		p["Location"] = obj{"PartLocation": obj{"ServiceLabel": v.s.Def.Name}}
		t[u] = p
	}
	t[uriImm+"/Pumps"] = collection(tPumpCollection, uriImm+"/Pumps", "Pumps", pumpURIs)
	leak := health.OK
	var detURIs []string
	var dets []any
	for _, v := range byRole(boardconfig.RoleLeak) {
		leak = health.Worse(leak, v.s.State)
		u := uriImm + "/LeakDetection/LeakDetectors/" + v.id
		detURIs = append(detURIs, u)
		d := resource(tLeakDetector, u, v.id, v.s.Def.Name)
		d["LeakDetectorType"] = "Moisture"
		d["Status"] = status(v.s.State, nil)
		d["DetectorState"] = healthOf(v.s.State)
		d["PhysicalContext"] = "Chassis"
		d["Location"] = obj{"PartLocation": obj{"ServiceLabel": v.s.Def.Name}}
		t[u] = d
		dets = append(dets, obj{"DataSourceUri": u, "DeviceName": v.s.Def.Name, "DetectorState": healthOf(v.s.State)})
	}
	ld := resource(tLeakDetection, uriImm+"/LeakDetection", "LeakDetection", "Leak Detection")
	ld["Status"] = status(leak, nil)
	ld["LeakDetectors"] = link(uriImm + "/LeakDetection/LeakDetectors")
	if dets == nil {
		dets = []any{}
	}
	ld["LeakDetectorGroups"] = []any{obj{"GroupName": "Tank detectors", "Detectors": dets, "Detectors@odata.count": len(dets), "Status": obj{"Health": healthOf(leak)}}}
	t[uriImm+"/LeakDetection"] = ld
	t[uriImm+"/LeakDetection/LeakDetectors"] = collection(tLeakDetectorColl, uriImm+"/LeakDetection/LeakDetectors", "Leak Detectors", detURIs)

	// Manager (boardd itself) and its logs.
	t[root+"/Managers"] = collection(tManagerCollection, root+"/Managers", "Managers", []string{uriManager})
	mg := resource(tManager, uriManager, managerID, "boardd board daemon")
	mg["ManagerType"] = "Service"
	mg["UUID"] = stableUUID(cid + "/boardd")
	mg["ServiceEntryPointUUID"] = stableUUID(cid)
	if in.version != "" {
		mg["FirmwareVersion"] = in.version
	}
	bmcHealth := health.OK
	if !snap.BMC.Up && snap.Seq > 0 {
		bmcHealth = health.Critical
	}
	mg["Status"] = status(bmcHealth, nil)
	if snap.BMC.Err != "" {
		mg["Description"] = "BMC (" + snap.BMC.Transport + "): " + snap.BMC.Err
	}
	mg["LogServices"] = link(uriManager + "/LogServices")
	mg["NetworkProtocol"] = link(uriManager + "/NetworkProtocol")
	mg["Links"] = obj{"ManagerForChassis": links(curi), "ManagerInChassis": link(curi)}
	t[uriManager] = mg
	np := resource(tNetworkProtocol, uriManager+"/NetworkProtocol", "NetworkProtocol", "boardd network protocols")
	np["Status"] = obj{"State": "Enabled", "Health": "OK"}
	if in.hostname != "" {
		np["HostName"] = in.hostname
	}
	https := obj{"ProtocolEnabled": true}
	if in.httpsPort > 0 {
		https["Port"] = in.httpsPort
	}
	np["HTTPS"] = https
	np["HTTP"] = obj{"ProtocolEnabled": false}
	t[uriManager+"/NetworkProtocol"] = np
	t[uriManager+"/LogServices"] = collection(tLogServiceColl, uriManager+"/LogServices", "Log Services", []string{uriManager + "/LogServices/EventLog", uriManager + "/LogServices/SEL"})
	buildEventLog(t, in, regs)
	buildSEL(t, in)

	// Event service.
	es := resource(tEventService, uriEvents, "EventService", "Event Service")
	es["ServiceEnabled"] = in.evsvc.enabled
	es["DeliveryRetryAttempts"] = in.evsvc.retryAttempts
	es["DeliveryRetryIntervalSeconds"] = in.evsvc.retryInterval
	es["EventFormatTypes"] = []string{"Event"}
	es["RegistryPrefixes"] = []string{"ResourceEvent", "Base"}
	es["ServerSentEventUri"] = uriSSE
	es["SSEFilterPropertiesSupported"] = obj{
		"EventFormatType": true, "MessageId": true, "OriginResource": true, "RegistryPrefix": true,
		"ResourceType": true, "SubordinateResources": false, "MetricReportDefinition": false, "EventType": false,
	}
	es["Subscriptions"] = link(uriSubs)
	es["Actions"] = obj{"#EventService.SubmitTestEvent": obj{"target": uriSubmit}}
	es["Status"] = obj{"State": map[bool]string{true: "Enabled", false: "Disabled"}[in.evsvc.enabled], "Health": "OK"}
	t[uriEvents] = es
	var subURIs []string
	for _, sv := range in.subs {
		u := uriSubs + "/" + sv.ID
		subURIs = append(subURIs, u)
		t[u] = sv.resource(u)
	}
	t[uriSubs] = collection(tEventDestColl, uriSubs, "Event Subscriptions", subURIs)

	// Sessions and accounts.
	ss := resource(tSessionService, uriSession, "SessionService", "Session Service")
	ss["ServiceEnabled"] = true
	ss["SessionTimeout"] = int(in.timeout / time.Second)
	ss["Sessions"] = link(uriSess)
	ss["Status"] = obj{"State": "Enabled", "Health": "OK"}
	t[uriSession] = ss
	var sessURIs []string
	for _, x := range in.sessions {
		u := uriSess + "/" + x.ID
		sessURIs = append(sessURIs, u)
		o := resource(tSession, u, x.ID, "User Session")
		o["UserName"] = x.UserName
		o["Password"] = nil
		o["CreatedTime"] = x.Created.UTC().Format(time.RFC3339)
		o["SessionType"] = "Redfish"
		if x.ClientIP != "" {
			o["ClientOriginIPAddress"] = x.ClientIP
		}
		t[u] = o
	}
	t[uriSess] = collection(tSessionColl, uriSess, "Sessions", sessURIs)
	as := resource(tAccountService, uriAcctSvc, "AccountService", "Account Service")
	as["ServiceEnabled"] = true
	as["MinPasswordLength"] = auth.MinPasswordLength
	as["MaxPasswordLength"] = auth.MaxPasswordLength
	as["LocalAccountAuth"] = "Enabled"
	as["Accounts"] = link(uriAccts)
	as["Roles"] = link(uriRoles)
	as["Status"] = obj{"State": "Enabled", "Health": "OK"}
	t[uriAcctSvc] = as
	var acctURIs []string
	for _, a := range in.accounts {
		u := uriAccts + "/" + a.ID
		acctURIs = append(acctURIs, u)
		o := resource(tAccount, u, a.ID, "User Account")
		o["UserName"] = a.UserName
		o["RoleId"] = string(a.Role)
		o["Enabled"] = a.Enabled
		o["Locked"] = false
		o["Password"] = nil
		o["AccountTypes"] = []string{"Redfish"}
		o["Links"] = obj{"Role": link(uriRoles + "/" + string(a.Role))}
		t[u] = o
	}
	t[uriAccts] = collection(tAccountColl, uriAccts, "Accounts", acctURIs)
	var roleURIs []string
	for _, r := range auth.Roles() {
		u := uriRoles + "/" + string(r)
		roleURIs = append(roleURIs, u)
		o := resource(tRole, u, string(r), string(r)+" role")
		o["RoleId"] = string(r)
		o["IsPredefined"] = true
		o["AssignedPrivileges"] = r.Privileges()
		o["OemPrivileges"] = []string{}
		t[u] = o
	}
	t[uriRoles] = collection(tRoleColl, uriRoles, "Roles", roleURIs)

	// Registries.
	var regURIs []string
	prefixes := make([]string, 0, len(regs))
	for p := range regs {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		r := regs[p]
		u := uriRegs + "/" + p
		regURIs = append(regURIs, u)
		maj := strings.Join(strings.Split(r.version, ".")[:2], ".")
		o := resource(tRegistryFile, u, p, p+" Message Registry File")
		o["Languages"] = []string{"en"}
		o["Registry"] = p + "." + maj
		loc := obj{"Language": "en", "Uri": u + "/" + r.id}
		if p != "Podos" { // DMTF publishes its registries; podos's is served only here
			loc["PublicationUri"] = "https://redfish.dmtf.org/registries/" + r.id + ".json"
		}
		o["Location"] = []any{loc}
		t[u] = o
	}
	t[uriRegs] = collection(tRegistryFileColl, uriRegs, "Registry Files", regURIs)

	// Extra trees (fabrics, PCIe devices) and links to them.
	for _, x := range in.extra {
		for u, o := range x.Resources(snap) {
			if _, dup := t[u]; dup || o == nil {
				continue
			}
			// A copy: rendering adds @odata.etag, and the tree's maps
			// are its own.
			t[u] = deepCopy(obj(o)).(obj)
		}
	}
	if _, ok := t[root+"/Fabrics"]; ok {
		rootObj["Fabrics"] = link(root + "/Fabrics")
	}
	if _, ok := t[root+"/Systems"]; ok {
		rootObj["Systems"] = link(root + "/Systems")
	}
	if _, ok := t[curi+"/PCIeDevices"]; ok {
		ch["PCIeDevices"] = link(curi + "/PCIeDevices")
	}
	return t
}

func firstWith(vs []sensorView, u bmc.Unit) *sensorView {
	for i := range vs {
		if vs[i].s.Def.Unit == u {
			return &vs[i]
		}
	}
	return nil
}

func speedExcerpt(v sensorView) obj {
	ex := obj{"DataSourceUri": v.uri}
	r := readingOf(v.s)
	switch v.s.Def.Unit {
	case bmc.UnitPercent:
		ex["Reading"] = r
	case bmc.UnitRPM:
		ex["SpeedRPM"] = r
	default:
		ex["Reading"] = nil
	}
	return ex
}

func thresholds(t bmc.Thresholds) obj {
	o := obj{}
	set := func(k string, v *float64) {
		if v != nil {
			o[k] = obj{"Reading": round(*v)}
		}
	}
	set("LowerCaution", t.LowerNonCritical)
	set("LowerCritical", t.LowerCritical)
	set("LowerFatal", t.LowerFatal)
	set("UpperCaution", t.UpperNonCritical)
	set("UpperCritical", t.UpperCritical)
	set("UpperFatal", t.UpperFatal)
	return o
}

// eventMessage renders an event's message from its registry, falling back
// to boardd's own sentence.
func eventMessage(regs registries, ev events.Event) (id, text, sev string) {
	id = ev.MessageID
	sev = severityOf(ev.Severity)
	if id == "" {
		id = "ResourceEvent.1.4.ResourceStateChanged"
	}
	if t, m, ok := regs.format(id, ev.MessageArgs); ok {
		text = t
		// podos's own registry states one severity per message, but a
		// workload action is as severe as the condition that caused it.
		if m.MessageSeverity != "" && ev.MessageID != "" && !strings.HasPrefix(id, "Podos.") {
			sev = m.MessageSeverity
		}
	} else {
		text = ev.Message
	}
	if text == "" {
		text = ev.Message
	}
	return id, text, sev
}

func buildEventLog(t map[string]obj, in buildInput, regs registries) {
	base := uriManager + "/LogServices/EventLog"
	ls := resource(tLogService, base, "EventLog", "boardd event log")
	ls["ServiceEnabled"] = true
	ls["LogEntryType"] = "Event"
	ls["OverWritePolicy"] = "Unknown"
	ls["MaxNumberOfRecords"] = maxLogEntriesInMemory
	ls["Entries"] = link(base + "/Entries")
	ls["Status"] = obj{"State": "Enabled", "Health": "OK"}
	t[base] = ls
	var uris []string
	for _, ev := range in.log {
		id := strconv.FormatUint(ev.Seq, 10)
		u := base + "/Entries/" + id
		uris = append(uris, u)
		if in.keys != nil {
			k := "ev\x00" + ev.Origin
			in.keys[u] = k
			if in.have != nil && in.have(u, k) {
				t[u] = nil
				continue
			}
		}
		mid, text, sev := eventMessage(regs, ev)
		o := resource(tLogEntry, u, id, "boardd event "+id)
		o["EntryType"] = "Event"
		o["MessageId"] = mid
		o["Message"] = text
		args := ev.MessageArgs
		if args == nil {
			args = []string{}
		}
		o["MessageArgs"] = args
		o["Severity"] = sev
		o["Created"] = ev.Time.UTC().Format(time.RFC3339)
		if ev.Message != "" && ev.Message != text {
			o["Description"] = ev.Message // boardd's own sentence: what and why
		}
		if ev.Origin != "" && strings.HasPrefix(ev.Origin, root+"/") {
			o["Links"] = obj{"OriginOfCondition": link(ev.Origin)}
		}
		t[u] = o
	}
	t[base+"/Entries"] = collection(tLogEntryColl, base+"/Entries", "boardd event log entries", uris)
}

// ipmiSensorTypes names IPMI sensor type codes as LogEntry.SensorType.
var ipmiSensorTypes = map[uint8]string{
	0x01: "Temperature", 0x02: "Voltage", 0x03: "Current", 0x04: "Fan",
	0x05: "Physical Chassis Security", 0x06: "Platform Security Violation Attempt",
	0x07: "Processor", 0x08: "Power Supply / Converter", 0x09: "PowerUnit",
	0x0A: "CoolingDevice", 0x0B: "Other Units-based Sensor", 0x0C: "Memory",
	0x0D: "Drive Slot/Bay", 0x0E: "POST Memory Resize", 0x0F: "System Firmware Progress",
	0x10: "Event Logging Disabled", 0x12: "System Event", 0x13: "Critical Interrupt",
	0x14: "Button/Switch", 0x15: "Module/Board", 0x16: "Microcontroller/Coprocessor",
	0x17: "Add-in Card", 0x18: "Chassis", 0x19: "ChipSet", 0x1A: "Other FRU",
	0x1B: "Cable/Interconnect", 0x1C: "Terminator", 0x1D: "SystemBoot/Restart",
	0x1E: "Boot Error", 0x1F: "BaseOSBoot/InstallationStatus", 0x20: "OS Stop/Shutdown",
	0x21: "Slot/Connector", 0x22: "System ACPI PowerState", 0x23: "Watchdog",
	0x24: "Platform Alert", 0x25: "Entity Presence", 0x26: "Monitor ASIC/IC",
	0x27: "LAN", 0x28: "Management Subsystem Health", 0x29: "Battery",
	0x2A: "Session Audit", 0x2B: "Version Change", 0x2C: "FRUState",
}

func buildSEL(t map[string]obj, in buildInput) {
	base := uriManager + "/LogServices/SEL"
	ls := resource(tLogService, base, "SEL", "BMC System Event Log")
	ls["ServiceEnabled"] = in.sel.enabled
	ls["LogEntryType"] = "SEL"
	ls["OverWritePolicy"] = "Unknown"
	ls["Entries"] = link(base + "/Entries")
	st := obj{"State": "Enabled", "Health": "OK"}
	if !in.sel.enabled {
		st = obj{"State": "Disabled", "Health": nil}
	} else if in.sel.err != "" {
		st["Health"] = "Warning"
		ls["Description"] = "Last SEL read failed: " + in.sel.err
	}
	ls["Status"] = st
	t[base] = ls
	var uris []string
	for _, e := range in.sel.entries {
		id := strconv.Itoa(int(e.RecordID))
		u := base + "/Entries/" + id
		if _, dup := t[u]; dup {
			continue
		}
		uris = append(uris, u)
		if in.keys != nil {
			k := fmt.Sprintf("sel\x00%+v", e)
			in.keys[u] = k
			if in.have != nil && in.have(u, k) {
				t[u] = nil
				continue
			}
		}
		o := resource(tLogEntry, u, id, "SEL entry "+id)
		o["EntryType"] = "SEL"
		if n, ok := ipmiSensorTypes[e.SensorType]; ok {
			o["SensorType"] = n
		}
		o["SensorNumber"] = int(e.SensorNumber)
		if e.Deassertion {
			o["EntryCode"] = "Deassert"
		} else {
			o["EntryCode"] = "Assert"
		}
		msg := e.Message
		if msg == "" {
			msg = fmt.Sprintf("sensor type 0x%02x number 0x%02x event type 0x%02x data %02x%02x%02x", e.SensorType, e.SensorNumber, e.EventType, e.EventData[0], e.EventData[1], e.EventData[2])
		}
		o["Message"] = msg
		o["Severity"] = "OK"
		o["GeneratorId"] = fmt.Sprintf("0x%04X", e.GeneratorID)
		if !e.Time.IsZero() {
			o["Created"] = e.Time.UTC().Format(time.RFC3339)
		}
		t[u] = o
	}
	t[base+"/Entries"] = collection(tLogEntryColl, base+"/Entries", "SEL entries", uris)
}
