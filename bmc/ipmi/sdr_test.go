package ipmi

import (
	"errors"
	"math"
	"strings"
	"testing"

	"podos.dev/podos/bmc"
)

// full builds a full sensor record (type 0x01) the way a BMC stores it.
type full struct {
	owner, lun, num, entity, inst, stype, rtype uint8
	access, hystAccess                          uint8
	readable                                    uint8
	units1, base                                uint8
	m, b                                        int
	rexp, bexp                                  int
	lin                                         uint8
	th                                          [6]uint8 // lnc lc lnr unc uc unr
	pos, neg                                    uint8
	name                                        string
}

func (f full) bytes() []byte {
	r := make([]byte, fullFixedLen+len(f.name))
	r[0], r[1], r[2], r[3], r[4] = 0x34, 0x12, 0x51, 0x01, byte(len(r)-5)
	r[5], r[6], r[7], r[8], r[9] = f.owner, f.lun, f.num, f.entity, f.inst
	r[11] = f.hystAccess<<4 | f.access<<2
	r[12], r[13] = f.stype, f.rtype
	r[18] = f.readable
	r[20], r[21], r[23] = f.units1, f.base, f.lin
	m, b := uint(f.m)&0x3ff, uint(f.b)&0x3ff
	r[24], r[25] = byte(m), byte(m>>8)<<6
	r[26], r[27] = byte(b), byte(b>>8)<<6
	r[29] = byte(f.rexp&0x0f)<<4 | byte(f.bexp&0x0f)
	r[36], r[37], r[38], r[39], r[40], r[41] = f.th[IdxUNR], f.th[IdxUC], f.th[IdxUNC], f.th[IdxLNR], f.th[IdxLC], f.th[IdxLNC]
	r[42], r[43] = f.pos, f.neg
	r[47] = 0xc0 | byte(len(f.name))
	copy(r[48:], f.name)
	return r
}

// compact builds a compact sensor record (type 0x02).
func compact(num, entity, stype, rtype uint8, share, mod uint8, name string) []byte {
	r := make([]byte, compactFixedLen+len(name))
	r[0], r[1], r[2], r[3], r[4] = 0x07, 0x00, 0x51, 0x02, byte(len(r)-5)
	r[5], r[6], r[7], r[8], r[9] = 0x20, 0x00, num, entity, 0x01
	r[12], r[13] = stype, rtype
	r[20] = 0xc0
	r[23] = mod<<4 | share
	r[24] = 0x80 // entity instance increments
	r[25], r[26] = 3, 4
	r[31] = 0xc0 | byte(len(name))
	copy(r[32:], name)
	return r
}

func TestDecodeSDRFull(t *testing.T) {
	rec := full{owner: 0x20, lun: 1, num: 0x42, entity: 0x0a, inst: 0x82, stype: 0x02, rtype: 0x01,
		access: 2, hystAccess: 1, readable: 0x3f, units1: 0x80, base: 4, m: -300, b: 511, rexp: -3, bexp: -8,
		th: [6]uint8{1, 2, 3, 4, 5, 6}, pos: 7, neg: 8, name: "PSU_IN_V"}.bytes()
	got, err := DecodeSDR(rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d sensors", len(got))
	}
	s := got[0]
	want := SDR{RecordID: 0x1234, RecordType: 1, Owner: 0x20, LUN: 1, Number: 0x42, EntityID: 0x0a, EntityInst: 0x02,
		SensorType: 2, ReadingType: 1, ThresholdAccess: 2, HysteresisAccess: 1, ReadableThresholds: 0x3f,
		BaseUnit: 4, Factors: Factors{M: -300, B: 511, RExp: -3, BExp: -8, Format: FormatTwos},
		RawThresholds: [6]uint8{1, 2, 3, 4, 5, 6}, RawPosHyst: 7, RawNegHyst: 8, Name: "PSU_IN_V"}
	if s != want {
		t.Errorf("decoded\n %+v\nwant\n %+v", s, want)
	}
	if s.ID() != "20-1-42" {
		t.Errorf("ID() = %q", s.ID())
	}
}

func TestDecodeSDR(t *testing.T) {
	// Records as OpenIPMI's sdrcomp writes them (with and without -8).
	sdrcomp8 := []byte("\x01\x00Q\x02% \x00\x03\x0a\x01\x00\x00\x08o\x00\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xcaPSU STATUS")
	sdrcomp6 := []byte("\x01\x00Q\x02# \x00\x03\x0a\x01\x00\x00\x08o\x00\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x8a\xf0\x5c\x03\x33\x1d\xd2\xf5\x0c")
	bcd := compact(9, 0x07, 0x01, 0x6f, 0, 0, "")
	bcd = append(bcd[:31], 0x42, 0x21, 0xf3) // BCD plus, 2 bytes, low nibble first: "12", "3_"
	bcd[4] = byte(len(bcd) - 5)
	tests := []struct {
		name    string
		rec     []byte
		names   []string
		numbers []uint8
		err     error
	}{
		{"sdrcomp -8 compact", sdrcomp8, []string{"PSU STATUS"}, []uint8{3}, nil},
		{"sdrcomp 6-bit packed, length in characters", sdrcomp6, []string{"PSU STATUS"}, []uint8{3}, nil},
		{"compact shared numeric", compact(0x10, 0x1d, 0x04, 0x07, 3, 0, "FAN"), []string{"FAN0", "FAN1", "FAN2"}, []uint8{0x10, 0x11, 0x12}, nil},
		{"compact shared alpha", compact(0x10, 0x0a, 0x08, 0x6f, 2, 1, "PSU"), []string{"PSUA", "PSUB"}, []uint8{0x10, 0x11}, nil},
		{"compact share count 1", compact(0x10, 0x0a, 0x08, 0x6f, 1, 0, "PSU"), []string{"PSU"}, []uint8{0x10}, nil},
		{"bcd plus name", bcd, []string{"123_"}, []uint8{9}, nil},
		{"name with control bytes", compact(1, 1, 1, 0x6f, 0, 0, "A\x01B\x00\x00"), []string{"A?B"}, []uint8{1}, nil},
		{"mc locator", []byte{1, 0, 0x51, 0x12, 3, 0x20, 0, 0}, nil, nil, ErrNotSensor},
		{"empty", nil, nil, nil, ErrShortRecord},
		{"header only", []byte{1, 0, 0x51, 0x01, 0}, nil, nil, ErrShortRecord},
		{"compact too short", compact(1, 1, 1, 1, 0, 0, "X")[:20], nil, nil, ErrShortRecord},
		{"name longer than record", append(compact(1, 1, 1, 0x6f, 0, 0, "")[:31], 0xc5, 'A'), nil, nil, ErrShortRecord},
		{"full too short", full{name: "X"}.bytes()[:40], nil, nil, ErrShortRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSDR(tt.rec)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.names) {
				t.Fatalf("got %d sensors %+v, want %d", len(got), got, len(tt.names))
			}
			for i, s := range got {
				if s.Name != tt.names[i] || s.Number != tt.numbers[i] {
					t.Errorf("sensor %d = %q #%d, want %q #%d", i, s.Name, s.Number, tt.names[i], tt.numbers[i])
				}
				if s.Factors.Format != FormatNoAnalog {
					t.Errorf("compact sensor has analog format %d", s.Factors.Format)
				}
			}
		})
	}
}

func TestConvertReading(t *testing.T) {
	tests := []struct {
		name string
		f    Factors
		raw  uint8
		want float64
		err  error
	}{
		{"identity", Factors{M: 1}, 200, 200, nil},
		{"scaled tenths", Factors{M: 1, RExp: -1}, 240, 24.0, nil},
		{"offset with bexp", Factors{M: 5, B: -10, BExp: 1, RExp: -2}, 120, 5.0, nil},
		{"offset positive", Factors{M: 1, B: 2, BExp: 1, RExp: -2}, 100, 1.2, nil},
		{"ipmitool 1.0V example", Factors{M: 78, B: 9, BExp: 4, RExp: -5}, 100, 0.978, nil},
		{"large multiplier", Factors{M: 50}, 60, 3000, nil},
		{"negative M", Factors{M: -2, B: 100}, 10, 80, nil},
		{"twos complement negative", Factors{M: 1, Format: FormatTwos}, 251, -5, nil},
		{"twos complement min", Factors{M: 1, Format: FormatTwos}, 0x80, -128, nil},
		{"twos complement positive", Factors{M: 1, Format: FormatTwos}, 0x7f, 127, nil},
		{"ones complement negative", Factors{M: 1, Format: FormatOnes}, 0xfa, -5, nil},
		{"ones complement negative zero", Factors{M: 1, Format: FormatOnes}, 0xff, 0, nil},
		{"ones complement positive", Factors{M: 1, Format: FormatOnes}, 0x05, 5, nil},
		{"no analog", Factors{M: 1, Format: FormatNoAnalog}, 1, 0, ErrNoAnalog},
		{"log10 unsupported", Factors{M: 1, Linearization: 2}, 1, 0, ErrLinearization},
		{"non-linear unsupported", Factors{M: 1, Linearization: 0x70}, 1, 0, ErrLinearization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConvertReading(tt.f, tt.raw)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && got != tt.want {
				t.Errorf("ConvertReading(%+v, %d) = %v, want %v", tt.f, tt.raw, got, tt.want)
			}
		})
	}
}

func TestConvertHysteresis(t *testing.T) {
	tests := []struct {
		f    Factors
		raw  uint8
		want float64
		err  error
	}{
		{Factors{M: 1, RExp: -1}, 2, 0.2, nil},
		{Factors{M: 5, B: -10, BExp: 1, RExp: -2}, 4, 0.2, nil}, // B does not apply
		{Factors{M: -2, Format: FormatTwos}, 3, 6, nil},         // an offset is never negative
		{Factors{M: 1, Format: FormatNoAnalog}, 3, 0, ErrNoAnalog},
		{Factors{M: 1, Linearization: 7}, 3, 0, ErrLinearization},
	}
	for _, tt := range tests {
		got, err := ConvertHysteresis(tt.f, tt.raw)
		if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
			t.Errorf("ConvertHysteresis(%+v, %d) = %v, %v; want %v, %v", tt.f, tt.raw, got, err, tt.want, tt.err)
		}
	}
}

func TestUnitAndClass(t *testing.T) {
	th := func(stype, entity, base uint8, name string) SDR {
		return SDR{ReadingType: 0x01, SensorType: stype, EntityID: entity, BaseUnit: base, Name: name}
	}
	disc := func(stype, rtype, entity uint8, name string) SDR {
		return SDR{ReadingType: rtype, SensorType: stype, EntityID: entity, Name: name, Factors: Factors{Format: FormatNoAnalog}}
	}
	pct := th(0x02, 0x07, 4, "LOAD")
	pct.Percentage = true
	tests := []struct {
		name  string
		s     SDR
		unit  bmc.Unit
		class bmc.Class
	}{
		{"volts", th(0x02, 0x0a, UnitCodeVolts, "PSU_IN_V"), bmc.UnitVolts, bmc.ClassVoltage},
		{"amps", th(0x03, 0x0a, UnitCodeAmps, "PSU_IN_A"), bmc.UnitAmperes, bmc.ClassCurrent},
		{"watts on a current-type sensor", th(0x03, 0x0a, UnitCodeWatts, "PSU_IN_W"), bmc.UnitWatts, bmc.ClassPower},
		{"celsius", th(0x01, 0x07, UnitCodeCelsius, "OIL"), bmc.UnitCelsius, bmc.ClassTemperature},
		{"rpm fan", th(0x04, 0x1d, UnitCodeRPM, "FAN1"), bmc.UnitRPM, bmc.ClassFan},
		{"rpm pump by name", th(0x04, 0x1d, UnitCodeRPM, "Pump 2"), bmc.UnitRPM, bmc.ClassPump},
		{"rpm pump by cooling unit entity", th(0x04, 0x1e, UnitCodeRPM, "LOOP1"), bmc.UnitRPM, bmc.ClassPump},
		{"unit unspecified, temperature type", th(0x01, 0x07, 0, "T"), bmc.UnitOther, bmc.ClassTemperature},
		{"unit unspecified, fan type on cooling unit", th(0x04, 0x1e, 0, "X"), bmc.UnitOther, bmc.ClassPump},
		{"unmodelled unit and type", th(0x0b, 0x07, 19, "FREQ"), bmc.UnitOther, bmc.ClassOther},
		{"percentage", pct, bmc.UnitPercent, bmc.ClassVoltage},
		{"psu status", disc(0x08, 0x6f, 0x0a, "PSU_STATUS"), bmc.UnitNone, bmc.ClassPSU},
		{"fuse by type", disc(0x08, 0x03, 0x14, "F1"), bmc.UnitNone, bmc.ClassFuse},
		{"fuse by name beats psu type", disc(0x08, 0x6f, 0x0a, "PSU Fuse"), bmc.UnitNone, bmc.ClassFuse},
		{"leak by name", disc(0x05, 0x03, 0x07, "LEAK_DETECT"), bmc.UnitNone, bmc.ClassLeak},
		{"leak by cooling unit entity", disc(0xc0, 0x03, 0x1e, "COOLANT"), bmc.UnitNone, bmc.ClassLeak},
		{"leak by cooling device type", disc(0x0a, 0x6f, 0x07, "X"), bmc.UnitNone, bmc.ClassLeak},
		{"psu by entity", disc(0xc1, 0x6f, 0x0a, "OEM"), bmc.UnitNone, bmc.ClassPSU},
		{"power unit", disc(0x09, 0x6f, 0x13, "PU"), bmc.UnitNone, bmc.ClassPSU},
		{"other discrete", disc(0x07, 0x6f, 0x03, "CPU_STATUS"), bmc.UnitNone, bmc.ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if u := UnitOf(&tt.s); u != tt.unit {
				t.Errorf("UnitOf = %q, want %q", u, tt.unit)
			}
			if c := ClassOf(&tt.s); c != tt.class {
				t.Errorf("ClassOf = %q, want %q", c, tt.class)
			}
		})
	}
}

func TestSELPackParse(t *testing.T) {
	tests := []struct {
		ev  bmc.SELEvent
		msg string
	}{
		{bmc.SELEvent{SensorType: 0x08, SensorNumber: 0x30, EventType: 0x6f, EventData: [3]byte{0x01, 0xff, 0xff}}, "Power Supply #0x30 | Failure detected | Asserted"},
		{bmc.SELEvent{SensorType: 0x01, SensorNumber: 0x11, EventType: 0x01, Deassertion: true, EventData: [3]byte{0x59, 120, 110}}, "Temperature #0x11 | Upper Critical going high | Deasserted"},
		{bmc.SELEvent{SensorType: 0x08, SensorNumber: 0x31, EventType: 0x03, EventData: [3]byte{0x01, 0xff, 0xff}}, "Power Supply #0x31 | State Asserted | Asserted"},
		{bmc.SELEvent{SensorType: 0xc0, SensorNumber: 0x40, EventType: 0x70, EventData: [3]byte{0x02}}, "Sensor type 0xc0 #0x40 | Event type 0x70 offset 2 | Asserted"},
	}
	for _, tt := range tests {
		b := PackSEL(tt.ev)
		if len(b) != 16 || b[2] != 0x02 || b[9] != EvMRev || uint16(b[7])|uint16(b[8])<<8 != GeneratorBoardd {
			t.Fatalf("PackSEL(%+v) = % x", tt.ev, b)
		}
		b[0], b[1] = 0x07, 0x00
		b[3], b[4], b[5], b[6] = 0x00, 0x00, 0x00, 0x60 // 2021-01-05
		e, err := ParseSEL(b)
		if err != nil {
			t.Fatal(err)
		}
		if e.RecordID != 7 || e.SensorType != tt.ev.SensorType || e.SensorNumber != tt.ev.SensorNumber ||
			e.EventType != tt.ev.EventType || e.Deassertion != tt.ev.Deassertion || e.EventData != tt.ev.EventData ||
			e.GeneratorID != GeneratorBoardd || e.Time.Unix() != 0x60000000 {
			t.Errorf("round trip of %+v = %+v", tt.ev, e)
		}
		if e.Message != tt.msg {
			t.Errorf("message %q, want %q", e.Message, tt.msg)
		}
	}
	oem := make([]byte, 16)
	oem[2] = 0xe5
	if e, err := ParseSEL(oem); err != nil || !strings.Contains(e.Message, "OEM record type 0xe5") || !e.Time.IsZero() {
		t.Errorf("OEM record: %+v, %v", e, err)
	}
	if _, err := ParseSEL(oem[:10]); err == nil {
		t.Error("short SEL record accepted")
	}
}

func TestKCSDeviceNumber(t *testing.T) {
	tests := []struct {
		path string
		n    int
		ok   bool
	}{
		{"/dev/ipmi0", 0, true}, {"/dev/ipmi12", 12, true}, {"/dev/ipmi/1", 1, true}, {"/dev/ipmidev/2", 2, true},
		{"/dev/ipmi", 0, false}, {"/dev/sda", 0, false}, {"ipmi0", 0, false}, {"/dev/ipmi999", 0, false}, {"/dev/ipmi0/../sda", 0, false},
	}
	for _, tt := range tests {
		n, err := KCSDeviceNumber(tt.path)
		if (err == nil) != tt.ok || n != tt.n {
			t.Errorf("KCSDeviceNumber(%q) = %d, %v; want %d ok=%v", tt.path, n, err, tt.n, tt.ok)
		}
	}
}

func FuzzDecodeSDR(f *testing.F) {
	f.Add(full{owner: 0x20, num: 1, stype: 2, rtype: 1, base: 4, m: 1, rexp: -1, name: "PSU_IN_V"}.bytes())
	f.Add(compact(0x10, 0x1d, 0x04, 0x07, 3, 1, "FAN"))
	f.Add([]byte{1, 0, 0x51, 0x12, 3, 0x20, 0, 0})
	f.Fuzz(func(t *testing.T, rec []byte) {
		sdrs, err := DecodeSDR(rec)
		if err != nil {
			if len(sdrs) != 0 {
				t.Fatalf("error %v with %d sensors", err, len(sdrs))
			}
			return
		}
		if len(sdrs) == 0 || len(sdrs) > 15 {
			t.Fatalf("%d sensors from one record", len(sdrs))
		}
		for _, s := range sdrs {
			if s.RecordType != RecordFull && s.RecordType != RecordCompact {
				t.Fatalf("sensor from record type %d", s.RecordType)
			}
			if s.LUN > 3 || s.EntityInst > 0x7f || s.ThresholdAccess > 3 || s.Factors.Format > 3 {
				t.Fatalf("field out of range: %+v", s)
			}
			if s.Factors.M < -512 || s.Factors.M > 511 || s.Factors.RExp < -8 || s.Factors.RExp > 7 {
				t.Fatalf("factors out of range: %+v", s.Factors)
			}
			if strings.ContainsFunc(s.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("control character in name %q", s.Name)
			}
			_ = ClassOf(&s)
			_ = UnitOf(&s)
			if s.IsThreshold() {
				for _, raw := range s.RawThresholds {
					if v, err := ConvertReading(s.Factors, raw); err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
						t.Fatalf("threshold converts to %v", v)
					}
				}
			}
		}
	})
}

func FuzzConvertReading(f *testing.F) {
	f.Add(int16(1), int16(0), int8(0), int8(0), uint8(0), uint8(0), uint8(200))
	f.Add(int16(5), int16(-10), int8(-2), int8(1), uint8(0), uint8(0), uint8(120))
	f.Add(int16(1), int16(0), int8(0), int8(0), uint8(2), uint8(0), uint8(251))
	f.Add(int16(-511), int16(511), int8(7), int8(-8), uint8(1), uint8(0), uint8(0x80))
	f.Add(int16(1), int16(0), int8(0), int8(0), uint8(0), uint8(0x70), uint8(1))
	f.Fuzz(func(t *testing.T, m, b int16, rexp, bexp int8, format, lin, raw uint8) {
		// Factors as DecodeSDR can produce them.
		fac := Factors{M: signExtend(int(m), 10), B: signExtend(int(b), 10), RExp: signExtend(int(rexp), 4),
			BExp: signExtend(int(bexp), 4), Format: format & 3, Linearization: lin & 0x7f}
		v, err := ConvertReading(fac, raw)
		if err != nil {
			if fac.Linearization == 0 && fac.Format != FormatNoAnalog {
				t.Fatalf("linear analog sensor failed: %v", err)
			}
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("ConvertReading(%+v, %d) = %v", fac, raw, v)
		}
		// The formula, computed independently.
		x, _ := rawValue(raw, fac.Format)
		want := (float64(fac.M)*float64(x) + float64(fac.B)*math.Pow(10, float64(fac.BExp))) * math.Pow(10, float64(fac.RExp))
		if diff := math.Abs(v - want); diff > 1e-6*math.Max(1, math.Abs(want)) {
			t.Fatalf("ConvertReading(%+v, %d) = %v, formula gives %v", fac, raw, v, want)
		}
		// Linear: one raw count more changes the unsigned reading by M*10^RExp.
		if fac.Format == FormatUnsigned && raw < 255 {
			next, _ := ConvertReading(fac, raw+1)
			step := float64(fac.M) * math.Pow(10, float64(fac.RExp))
			if d := next - v - step; math.Abs(d) > 1e-6*math.Max(1, math.Abs(v)) {
				t.Fatalf("step from raw %d to %d is %v, want %v", raw, raw+1, next-v, step)
			}
		}
	})
}
