package ipmisim

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	boardconfig "podos.dev/podos/board-configs"
)

// bmcAddr is the BMC's IPMB address; every emulated sensor lives on it,
// LUN 0.
const bmcAddr = 0x20

// simName is the ipmi_sim instance name: persistent state lives in
// <state>/ipmi_sim/<simName>.
const simName = "podbmc"

// Threshold names in the order Get Sensor Thresholds and the bit masks
// use (bit 0 = lnc ... bit 5 = unr).
var thresholdKeys = [6]string{"lnc", "lc", "lnr", "unc", "uc", "unr"}

// sensor is one emulated sensor, validated.
type sensor struct {
	name string
	sim  boardconfig.SimSensor
	file string // polled value file
}

func (s *sensor) threshold() bool { return s.sim.EventType == 0x01 }

var nameSafe = regexp.MustCompile(`[^a-z0-9]+`)

// sensorsOf validates the config's emulated sensors.
func sensorsOf(cfg *boardconfig.Config, dir string) ([]*sensor, error) {
	if cfg == nil {
		return nil, fmt.Errorf("ipmisim: nil board config")
	}
	var out []*sensor
	numbers := map[uint8]string{}
	names := map[string]bool{}
	for i, cs := range cfg.Sensors {
		if cs.Sim == nil {
			continue
		}
		where := fmt.Sprintf("sensors[%d] %q", i, cs.Name)
		switch {
		case cs.Name == "":
			return nil, fmt.Errorf("ipmisim: %s: empty name", where)
		case len(cs.Name) > 16:
			return nil, fmt.Errorf("ipmisim: %s: name longer than 16 characters (SDR id string limit)", where)
		case strings.ContainsAny(cs.Name, "\"\\\n"):
			return nil, fmt.Errorf("ipmisim: %s: name has a quote, backslash or newline", where)
		case names[cs.Name]:
			return nil, fmt.Errorf("ipmisim: %s: duplicate name", where)
		case cs.Sim.EventType == 0:
			return nil, fmt.Errorf("ipmisim: %s: sim.event_type is 0 (want 0x01 threshold, 0x03 digital, 0x6f sensor-specific...)", where)
		case cs.Sim.Number == 0 || cs.Sim.Number == 0xff:
			return nil, fmt.Errorf("ipmisim: %s: sim.number %d is reserved", where, cs.Sim.Number)
		}
		if other, dup := numbers[cs.Sim.Number]; dup {
			return nil, fmt.Errorf("ipmisim: %s: sim.number 0x%02x already used by %q", where, cs.Sim.Number, other)
		}
		if cs.Sim.EventType == 0x01 {
			if cs.Sim.M < -512 || cs.Sim.M > 511 || cs.Sim.B < -512 || cs.Sim.B > 511 {
				return nil, fmt.Errorf("ipmisim: %s: sim.m and sim.b must fit 10 bits signed (-512..511)", where)
			}
			if cs.Sim.RExp < -8 || cs.Sim.RExp > 7 || cs.Sim.BExp < -8 || cs.Sim.BExp > 7 {
				return nil, fmt.Errorf("ipmisim: %s: sim.r_exp and sim.b_exp must be -8..7", where)
			}
			if cs.Sim.Initial > 0xff {
				return nil, fmt.Errorf("ipmisim: %s: sim.initial %d is not a raw byte", where, cs.Sim.Initial)
			}
			for k := range cs.Sim.RawThresholds {
				if !isThresholdKey(k) {
					return nil, fmt.Errorf("ipmisim: %s: unknown raw threshold %q (want lnc, lc, lnr, unc, uc, unr)", where, k)
				}
			}
		} else if cs.Sim.Initial > 0x7fff {
			return nil, fmt.Errorf("ipmisim: %s: sim.initial 0x%x has bit 15 set (discrete states are 15 bits)", where, cs.Sim.Initial)
		}
		numbers[cs.Sim.Number] = cs.Name
		names[cs.Name] = true
		file := filepath.Join(dir, "sensors", fmt.Sprintf("%02x_%s.val", cs.Sim.Number, strings.Trim(nameSafe.ReplaceAllString(strings.ToLower(cs.Name), "_"), "_")))
		out = append(out, &sensor{name: cs.Name, sim: *cs.Sim, file: file})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("ipmisim: board %q has no sensor with a sim block", cfg.Board.ID)
	}
	return out, nil
}

func isThresholdKey(k string) bool {
	for _, t := range thresholdKeys {
		if k == t {
			return true
		}
	}
	return false
}

// lanConf renders ipmi_lan(5) configuration.
func lanConf(o Options, lanPort, consolePort, serialPort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name %q\n", simName)
	fmt.Fprintf(&b, "set_working_mc 0x%02x\n", bmcAddr)
	b.WriteString("  startlan 1\n")
	fmt.Fprintf(&b, "    addr 127.0.0.1 %d\n", lanPort)
	b.WriteString("    priv_limit admin\n")
	b.WriteString("    allowed_auths_callback none md2 md5 straight\n")
	b.WriteString("    allowed_auths_user none md2 md5 straight\n")
	b.WriteString("    allowed_auths_operator none md2 md5 straight\n")
	b.WriteString("    allowed_auths_admin none md2 md5 straight\n")
	b.WriteString("    guid a123456789abcdefa123456789abcdef\n")
	b.WriteString("  endlan\n")
	if serialPort != 0 {
		fmt.Fprintf(&b, "  serial 15 127.0.0.1 %d codec VM\n", serialPort)
	}
	if o.StartCmd != "" {
		fmt.Fprintf(&b, "  startcmd %q\n", o.StartCmd)
		fmt.Fprintf(&b, "  startnow %v\n", o.StartNow)
		fmt.Fprintf(&b, "  poweroff_wait %d\n", or(o.PoweroffWait, 15))
		fmt.Fprintf(&b, "  kill_wait %d\n", or(o.KillWait, 5))
	}
	fmt.Fprintf(&b, "  user 2 true %q %q admin 10 none md2 md5 straight\n", User, Password)
	fmt.Fprintf(&b, "console 127.0.0.1 %d\n", consolePort)
	return b.String()
}

func or(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// emuFile renders the ipmi_sim_cmd(5) file: the MC, its SEL, and one
// polled sensor per config sensor with its thresholds and hysteresis.
func emuFile(sensors []*sensor) string {
	var b strings.Builder
	// mc_setbmc must come first: ipmi_sim reads the persisted SDR
	// repository (sdr.20.main) only when the MC it adds is the BMC.
	fmt.Fprintf(&b, "mc_setbmc 0x%02x\n", bmcAddr)
	fmt.Fprintf(&b, "mc_add 0x%02x 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n", bmcAddr)
	fmt.Fprintf(&b, "sel_enable 0x%02x 1000 0x0a\n", bmcAddr)
	for _, s := range sensors {
		fmt.Fprintf(&b, "# %s\n", s.name)
		fmt.Fprintf(&b, "sensor_add 0x%02x 0 0x%02x 0x%02x 0x%02x poll 500 file %q\n",
			bmcAddr, s.sim.Number, s.sim.SensorType, s.sim.EventType, s.file)
		if s.threshold() && len(s.sim.RawThresholds) > 0 {
			mask, vals := thresholdArgs(s.sim)
			fmt.Fprintf(&b, "sensor_set_threshold 0x%02x 0 0x%02x settable %s %s\n", bmcAddr, s.sim.Number, mask, vals)
		}
		if s.threshold() && s.sim.RawHysteresis != 0 {
			fmt.Fprintf(&b, "sensor_set_hysteresis 0x%02x 0 0x%02x readable %d %d\n", bmcAddr, s.sim.Number, s.sim.RawHysteresis, s.sim.RawHysteresis)
		}
	}
	fmt.Fprintf(&b, "mc_enable 0x%02x\n", bmcAddr)
	return b.String()
}

// thresholdArgs returns sensor_set_threshold's enable mask (leftmost =
// unr) and values (unr first).
func thresholdArgs(s boardconfig.SimSensor) (string, string) {
	var mask strings.Builder
	var vals []string
	for i := 5; i >= 0; i-- {
		v, ok := s.RawThresholds[thresholdKeys[i]]
		if ok {
			mask.WriteByte('1')
		} else {
			mask.WriteByte('0')
		}
		vals = append(vals, fmt.Sprint(v))
	}
	return mask.String(), strings.Join(vals, " ")
}

// sdrText renders the SDR repository source for sdrcomp: an MC device
// locator, a full record (type 1) per threshold sensor and a compact
// record (type 2) per discrete sensor.
func sdrText(boardID string, sensors []*sensor) string {
	var b strings.Builder
	w := func(k string, v any) { fmt.Fprintf(&b, "\t%s\t%v\n", k, v) }
	b.WriteString("sdr type 18\n")
	w("device_slave_address", fmt.Sprintf("0x%02x", bmcAddr))
	w("device_channel_number", 0)
	w("chassis", true)
	w("ipmb_event_gen", true)
	w("sel", true)
	w("sdr", true)
	w("sensor", true)
	w("entity_id", 7)
	w("entity_instance", 1)
	id := boardID
	if id == "" || len(id) > 16 {
		id = simName
	}
	w("id_string", fmt.Sprintf("%q", id))
	b.WriteString("endsdr\n\n")
	for _, s := range sensors {
		if s.threshold() {
			fullRecord(&b, s)
		} else {
			compactRecord(&b, s)
		}
	}
	return b.String()
}

func common(w func(string, any), s *sensor) {
	w("sensor_owner_id", fmt.Sprintf("0x%02x", bmcAddr))
	w("sensor_owner_lun", 0)
	w("channel_number", 0)
	w("sensor_number", s.sim.Number)
	w("entity_id", s.sim.EntityID)
	w("entity_instance", s.sim.EntityInst)
	w("init_scanning", true)
	w("init_events", true)
	w("init_sensor_type", true)
	w("default_event_gen_on", true)
	w("default_sensor_scan_on", true)
	w("sensor_auto_rearm", true)
	w("sensor_event_msg_ctrl", "per_state")
	w("sensor_type", s.sim.SensorType)
	w("event_reading_type_code", fmt.Sprintf("0x%02x", s.sim.EventType))
}

func fullRecord(b *strings.Builder, s *sensor) {
	w := func(k string, v any) { fmt.Fprintf(b, "\t%s\t%v\n", k, v) }
	fmt.Fprintf(b, "# %s\nsdr type 1\n", s.name)
	common(w, s)
	has := len(s.sim.RawThresholds) > 0
	w("init_thresholds", has)
	w("init_hysteresis", s.sim.RawHysteresis != 0)
	if has {
		w("sensor_threshold_access", "settable")
	} else {
		w("sensor_threshold_access", "no")
	}
	if s.sim.RawHysteresis != 0 {
		w("sensor_hysteresis", "readable")
	} else {
		w("sensor_hysteresis", "no")
	}
	events := map[string][]string{
		"lnc": {"assert_lncgl", "deassert_lncgl"}, "lc": {"assert_lcgl", "deassert_lcgl"},
		"lnr": {"assert_lnrgl", "deassert_lnrgl"}, "unc": {"assert_uncgh", "deassert_uncgh"},
		"uc": {"assert_ucgh", "deassert_ucgh"}, "unr": {"assert_unrgh", "deassert_unrgh"},
	}
	for _, k := range thresholdKeys {
		if _, ok := s.sim.RawThresholds[k]; !ok {
			continue
		}
		w("return_"+k, true)
		w(k+"_thrsh_readable", true)
		w(k+"_thrsh_settable", true)
		for _, e := range events[k] {
			w(e, true)
		}
	}
	if s.sim.Signed {
		w("analog_data_format", "2s_complement")
	} else {
		w("analog_data_format", "unsigned")
	}
	w("rate_unit", "none")
	w("modifier_unit", "none")
	w("percentage", false)
	w("base_unit", s.sim.Unit)
	w("modifier_unit_code", 0)
	w("linearization", "linear")
	w("m", s.sim.M)
	w("tolerance", 0)
	w("b", s.sim.B)
	w("accuracy", 0)
	w("accuracy_exp", 0)
	w("sensor_direction", "input")
	w("r_exp", s.sim.RExp)
	w("b_exp", s.sim.BExp)
	if s.sim.Signed {
		w("sensor_maximum", 0x7f)
		w("sensor_minimum", 0x80)
	} else {
		w("sensor_maximum", 0xff)
		w("sensor_minimum", 0)
	}
	for _, k := range thresholdKeys {
		if v, ok := s.sim.RawThresholds[k]; ok {
			w(k+"_thresh", v)
		}
	}
	w("positive_hysteresis", s.sim.RawHysteresis)
	w("negative_hysteresis", s.sim.RawHysteresis)
	w("id_string", fmt.Sprintf("%q", s.name))
	b.WriteString("endsdr\n\n")
}

func compactRecord(b *strings.Builder, s *sensor) {
	w := func(k string, v any) { fmt.Fprintf(b, "\t%s\t%v\n", k, v) }
	fmt.Fprintf(b, "# %s\nsdr type 2\n", s.name)
	common(w, s)
	for i := 0; i < 15; i++ {
		w(fmt.Sprintf("assert_event%d", i), true)
		w(fmt.Sprintf("deassert_event%d", i), true)
		w(fmt.Sprintf("event%d_state_ret", i), true)
	}
	w("id_string", fmt.Sprintf("%q", s.name))
	b.WriteString("endsdr\n\n")
}
