package health

import (
	"testing"

	"podos.dev/podos/bmc"
	boardconfig "podos.dev/podos/board-configs"
)

func discrete(name string, class bmc.Class, sensorType, readingType uint8) bmc.SensorDef {
	return bmc.SensorDef{ID: "20-0-" + name, Name: name, SensorType: sensorType, ReadingType: readingType,
		Kind: bmc.KindDiscrete, Class: class}
}

func TestDiscrete(t *testing.T) {
	psu := discrete("PSU_STATUS", bmc.ClassPSU, 0x08, 0x6f)
	pu := discrete("PWR_UNIT", bmc.ClassPSU, 0x09, 0x6f)
	psuDigital := discrete("PSU_OK", bmc.ClassPSU, 0x08, 0x03)
	psuOther := discrete("PSU_X", bmc.ClassPSU, 0x08, 0x0a)
	fuse := discrete("FUSE2", bmc.ClassFuse, 0x08, 0x03)
	fuse6f := discrete("FUSE3", bmc.ClassFuse, 0x08, 0x6f)
	fusePresence := discrete("FUSE4", bmc.ClassOther, 0x08, 0x08)
	fuseSeverity := discrete("FUSE5", bmc.ClassOther, 0x08, 0x07)
	leak := discrete("LEAK", bmc.ClassLeak, 0xc0, 0x03)
	leakLimit := discrete("LEAK_LIM", bmc.ClassOther, 0xc0, 0x05)
	leakEnabled := discrete("LEAK_EN", bmc.ClassOther, 0xc0, 0x09)
	sev := discrete("HEALTH", bmc.ClassOther, 0x0b, 0x07)
	dig := discrete("DOOR", bmc.ClassOther, 0x05, 0x03)

	role := func(r boardconfig.Role) *boardconfig.Sensor { return &boardconfig.Sensor{Role: r} }
	cases := []struct {
		name   string
		def    bmc.SensorDef
		cfg    *boardconfig.Sensor
		state  uint16
		want   State
		reason string
	}{
		// Power supply, sensor-specific offsets; by class and by role.
		{"psu present", psu, nil, 0x0001, OK, ""},
		{"psu absent", psu, nil, 0x0000, Critical, "PSU_STATUS: power supply not present"},
		{"psu failure", psu, nil, 0x0003, Critical, "PSU_STATUS: power supply failure detected"},
		{"psu predictive", psu, nil, 0x0005, Warning, "PSU_STATUS: power supply predictive failure"},
		{"psu input lost", psu, nil, 0x0009, Critical, "PSU_STATUS: power supply input lost"},
		{"psu input lost or out of range", psu, nil, 0x0011, Critical, "PSU_STATUS: power supply input lost or out of range"},
		{"psu input out of range", psu, nil, 0x0021, Warning, "PSU_STATUS: power supply input out of range"},
		{"psu config error", psu, nil, 0x0041, Warning, "PSU_STATUS: power supply configuration error"},
		{"psu several", psu, nil, 0x0007, Critical, "PSU_STATUS: power supply failure detected, predictive failure"},
		{"psu absent and lost", psu, nil, 0x0008, Critical, "PSU_STATUS: power supply not present, input lost"},
		{"psu by role", discrete("PSU_STATUS", bmc.ClassOther, 0x08, 0x6f), role(boardconfig.RolePSUStatus), 0x0003, Critical, "PSU_STATUS: power supply failure detected"},
		{"power unit ok", pu, nil, 0x0000, OK, ""},
		{"power unit AC lost", pu, nil, 0x0010, Critical, "PWR_UNIT: power unit AC lost"},
		{"power unit failure", pu, nil, 0x0040, Critical, "PWR_UNIT: power unit failure detected"},
		{"power unit soft", pu, nil, 0x0020, Warning, "PWR_UNIT: power unit soft power control failure"},
		{"power unit predictive", pu, nil, 0x0080, Warning, "PWR_UNIT: power unit predictive failure"},
		{"psu digital ok", psuDigital, nil, 0x0001, OK, ""},
		{"psu digital asserted", psuDigital, nil, 0x0002, Critical, "PSU_OK: power supply fault asserted"},
		{"psu unknown reading type", psuOther, nil, 0x00ff, OK, ""},
		// Fuses: offset 1 (bit 1) asserted = blown.
		{"fuse intact", fuse, nil, 0x0001, OK, ""},
		{"fuse no bits", fuse, nil, 0x0000, OK, ""},
		{"fuse blown", fuse, nil, 0x0002, Critical, "FUSE2 blown"},
		{"fuse both bits", fuse, nil, 0x0003, Critical, "FUSE2 blown"},
		{"fuse 0x6f failure", fuse6f, nil, 0x0002, Critical, "FUSE3 blown"},
		{"fuse by role, presence type absent", fusePresence, role(boardconfig.RoleFuse), 0x0001, Critical, "FUSE4 blown"},
		{"fuse by role, presence type present", fusePresence, role(boardconfig.RoleFuse), 0x0002, OK, ""},
		{"fuse severity type has no pair", fuseSeverity, role(boardconfig.RoleFuse), 0x0004, OK, ""},
		// Leak: offset 1 asserted = leak.
		{"leak dry", leak, nil, 0x0001, OK, ""},
		{"leak wet", leak, nil, 0x0002, Critical, "LEAK: coolant leak detected"},
		{"leak limit exceeded", leakLimit, role(boardconfig.RoleLeak), 0x0002, Critical, "LEAK_LIM: coolant leak detected"},
		{"leak detector disabled", leakEnabled, role(boardconfig.RoleLeak), 0x0001, Critical, "LEAK_EN: coolant leak detected"},
		{"leak detector enabled", leakEnabled, role(boardconfig.RoleLeak), 0x0002, OK, ""},
		// Generic severity sensors.
		{"severity ok", sev, nil, 0x0001, OK, ""},
		{"severity non-critical", sev, nil, 0x0002, Warning, "HEALTH reports a non-critical condition"},
		{"severity non-critical from worse", sev, nil, 0x0010, Warning, "HEALTH reports a non-critical condition"},
		{"severity critical", sev, nil, 0x0004, Critical, "HEALTH reports a critical condition"},
		{"severity non-recoverable", sev, nil, 0x0008, Critical, "HEALTH reports a critical condition"},
		{"severity critical from nr", sev, nil, 0x0020, Critical, "HEALTH reports a critical condition"},
		{"severity nr", sev, nil, 0x0040, Critical, "HEALTH reports a critical condition"},
		{"severity monitor", sev, nil, 0x0080, OK, ""},
		// Unknown semantics: not judged.
		{"other digital", dig, nil, 0x0002, OK, ""},
		{"other role digital", dig, role(boardconfig.RoleOther), 0x0002, OK, ""},
	}
	for _, c := range cases {
		in := Input{Def: c.def, Reading: bits(c.state), Cfg: c.cfg}
		st, _ := Evaluate(SensorState{}, in, Effective(c.def, c.cfg), 1, t0)
		if st.State != c.want || st.Reason != c.reason {
			t.Errorf("%s: got %v %q, want %v %q", c.name, st.State, st.Reason, c.want, c.reason)
		}
	}
}

// A fuse whose role says fuse but whose BMC sensor is a threshold sensor
// (a voltage measured after the fuse) is judged by thresholds and rolls up
// under Fuses.
func TestThresholdFuse(t *testing.T) {
	def := bmc.SensorDef{ID: "20-0-40", Name: "FUSE1_V", Kind: bmc.KindThreshold, Unit: bmc.UnitVolts,
		Class: bmc.ClassVoltage, Thresholds: bmc.Thresholds{LowerCritical: f(11)}}
	cfg := &boardconfig.Sensor{Name: "FUSE1_V", Role: boardconfig.RoleFuse}
	st, _ := Evaluate(SensorState{}, Input{Def: def, Cfg: cfg, Reading: value(0)}, Effective(def, cfg), 1, t0)
	if st.State != Critical || st.Reason != "FUSE1_V 0.00 V below lower critical 11.00 V" {
		t.Errorf("got %v %q", st.State, st.Reason)
	}
	if s := SubsystemOf(def, cfg); s != Fuses {
		t.Errorf("subsystem %v", s)
	}
}

func TestRoleOf(t *testing.T) {
	cases := []struct {
		class bmc.Class
		cfg   *boardconfig.Sensor
		want  boardconfig.Role
	}{
		{bmc.ClassPSU, nil, boardconfig.RolePSUStatus},
		{bmc.ClassFuse, nil, boardconfig.RoleFuse},
		{bmc.ClassLeak, nil, boardconfig.RoleLeak},
		{bmc.ClassTemperature, nil, boardconfig.RoleTemp},
		{bmc.ClassFan, nil, boardconfig.RoleFan},
		{bmc.ClassPump, nil, boardconfig.RolePump},
		{bmc.ClassVoltage, nil, boardconfig.RoleOther},
		{bmc.ClassOther, nil, boardconfig.RoleOther},
		{bmc.ClassVoltage, &boardconfig.Sensor{Role: boardconfig.RolePSUInput}, boardconfig.RolePSUInput},
		{bmc.ClassFan, &boardconfig.Sensor{}, boardconfig.RoleFan}, // a config entry without a role
	}
	for _, c := range cases {
		if got := RoleOf(bmc.SensorDef{Class: c.class}, c.cfg); got != c.want {
			t.Errorf("RoleOf(%s, %+v) = %s, want %s", c.class, c.cfg, got, c.want)
		}
	}
}
