package ipmi

// SDR decoding is written by hand rather than taken from go-ipmi's
// types.ParseSDR: we need a pure function over the raw record bytes that
// never panics on a short or hostile record (it is fuzzed), that expands
// compact records with a share count, and that keeps every field the
// reading conversion and the classification rules need in one small
// struct. go-ipmi's parser indexes fixed offsets of records it has not
// length-checked and mixes parsing with client calls.

import (
	"errors"
	"fmt"
	"strings"
)

// SDR record types this package understands.
const (
	RecordFull    uint8 = 0x01 // full sensor record: threshold (analog) sensors, sometimes discrete
	RecordCompact uint8 = 0x02 // compact sensor record: discrete sensors
)

// Analog data formats (SDR units 1, bits 7:6).
const (
	FormatUnsigned  uint8 = 0
	FormatOnes      uint8 = 1 // 1's complement
	FormatTwos      uint8 = 2 // 2's complement
	FormatNoAnalog  uint8 = 3 // no analog reading
	headerLen             = 5
	fullFixedLen          = 48 // bytes before the ID string of a full record
	compactFixedLen       = 32 // bytes before the ID string of a compact record
)

// Thresholds readable mask bits (SDR byte 19 of a full record, Get Sensor
// Thresholds byte 1).
const (
	ThreshLNC uint8 = 1 << iota
	ThreshLC
	ThreshLNR
	ThreshUNC
	ThreshUC
	ThreshUNR
)

// ErrShortRecord is returned for a record shorter than its type requires.
var ErrShortRecord = errors.New("sdr record too short")

// ErrNotSensor is returned for records that describe no sensor (device
// locators, entity associations, OEM records...). Callers skip them.
var ErrNotSensor = errors.New("sdr record is not a sensor record")

// Factors are the linear conversion factors of a full sensor record:
// y = L[(M*x + B*10^BExp) * 10^RExp].
type Factors struct {
	M, B          int // 10-bit two's complement values
	RExp, BExp    int // 4-bit two's complement values
	Format        uint8
	Linearization uint8 // 0 = linear; anything else is unsupported here
}

// SDR is one decoded sensor record.
type SDR struct {
	RecordID   uint16
	RecordType uint8
	Owner      uint8
	LUN        uint8
	Channel    uint8
	Number     uint8
	EntityID   uint8
	EntityInst uint8
	SensorType uint8
	// ReadingType is the event/reading type code: 0x01 threshold,
	// 0x02-0x0c generic discrete, 0x6f sensor-specific, 0x70-0x7f OEM.
	ReadingType uint8
	// ThresholdAccess is SDR capabilities bits 3:2: 0 none, 1 readable,
	// 2 readable and settable, 3 fixed (only in the SDR).
	ThresholdAccess uint8
	// HysteresisAccess is SDR capabilities bits 5:4 (same encoding).
	HysteresisAccess uint8
	// ReadableThresholds is the readable-threshold mask (Thresh* bits),
	// full records only.
	ReadableThresholds uint8
	Percentage         bool
	BaseUnit           uint8
	ModifierUnit       uint8
	RateUnit           uint8
	Factors            Factors
	// Raw thresholds from the SDR (full records): index by ThreshIndex*.
	RawThresholds [6]uint8
	RawPosHyst    uint8
	RawNegHyst    uint8
	Name          string
}

// Threshold indexes into SDR.RawThresholds, in Get Sensor Thresholds order.
const (
	IdxLNC = iota
	IdxLC
	IdxLNR
	IdxUNC
	IdxUC
	IdxUNR
)

// IsThreshold reports whether the sensor is a threshold-based sensor.
func (s *SDR) IsThreshold() bool { return s.ReadingType == 0x01 }

// ID is the stable sensor identifier: owner-lun-number.
func (s *SDR) ID() string { return SensorID(s.Owner, s.LUN, s.Number) }

// SensorID formats the stable ID of a sensor ("20-0-01").
func SensorID(owner, lun, number uint8) string {
	return fmt.Sprintf("%02x-%d-%02x", owner, lun, number)
}

// RecordType returns the type of a raw SDR record (byte 3), or an error if
// the header is incomplete.
func RecordType(rec []byte) (uint8, error) {
	if len(rec) < headerLen {
		return 0, fmt.Errorf("%w: %d bytes, header needs %d", ErrShortRecord, len(rec), headerLen)
	}
	return rec[3], nil
}

// DecodeSDR decodes one raw SDR record (header included). Full (0x01) and
// compact (0x02) sensor records yield one SDR per sensor: a compact record
// with a share count yields several. Other record types return
// ErrNotSensor. It never panics, whatever the input.
func DecodeSDR(rec []byte) ([]SDR, error) {
	typ, err := RecordType(rec)
	if err != nil {
		return nil, err
	}
	switch typ {
	case RecordFull:
		s, err := decodeFull(rec)
		if err != nil {
			return nil, err
		}
		return []SDR{s}, nil
	case RecordCompact:
		return decodeCompact(rec)
	default:
		return nil, fmt.Errorf("%w: type 0x%02x", ErrNotSensor, typ)
	}
}

func decodeCommon(rec []byte, s *SDR) {
	s.RecordID = uint16(rec[0]) | uint16(rec[1])<<8
	s.RecordType = rec[3]
	s.Owner = rec[5]
	s.LUN = rec[6] & 0x03
	s.Channel = rec[6] >> 4
	s.Number = rec[7]
	s.EntityID = rec[8]
	s.EntityInst = rec[9] & 0x7f
	s.HysteresisAccess = (rec[11] >> 4) & 0x03
	s.ThresholdAccess = (rec[11] >> 2) & 0x03
	s.SensorType = rec[12]
	s.ReadingType = rec[13]
	s.Percentage = rec[20]&0x01 != 0
	s.ModifierUnit = rec[22]
	s.BaseUnit = rec[21]
	s.RateUnit = (rec[20] >> 3) & 0x07
	if s.IsThreshold() {
		s.ReadableThresholds = rec[18] & 0x3f
	}
}

func decodeFull(rec []byte) (SDR, error) {
	var s SDR
	if len(rec) < fullFixedLen {
		return s, fmt.Errorf("%w: full record has %d bytes, needs %d", ErrShortRecord, len(rec), fullFixedLen)
	}
	decodeCommon(rec, &s)
	s.Factors = Factors{
		M:             signExtend(int(rec[24])|int(rec[25]&0xc0)<<2, 10),
		B:             signExtend(int(rec[26])|int(rec[27]&0xc0)<<2, 10),
		RExp:          signExtend(int(rec[29]>>4), 4),
		BExp:          signExtend(int(rec[29]&0x0f), 4),
		Format:        rec[20] >> 6,
		Linearization: rec[23] & 0x7f,
	}
	// Byte order in the record: UNR, UC, UNC, LNR, LC, LNC.
	s.RawThresholds[IdxUNR] = rec[36]
	s.RawThresholds[IdxUC] = rec[37]
	s.RawThresholds[IdxUNC] = rec[38]
	s.RawThresholds[IdxLNR] = rec[39]
	s.RawThresholds[IdxLC] = rec[40]
	s.RawThresholds[IdxLNC] = rec[41]
	s.RawPosHyst = rec[42]
	s.RawNegHyst = rec[43]
	name, err := decodeIDString(rec[47], rec[fullFixedLen:])
	if err != nil {
		return s, err
	}
	s.Name = name
	return s, nil
}

func decodeCompact(rec []byte) ([]SDR, error) {
	var s SDR
	if len(rec) < compactFixedLen {
		return nil, fmt.Errorf("%w: compact record has %d bytes, needs %d", ErrShortRecord, len(rec), compactFixedLen)
	}
	decodeCommon(rec, &s)
	s.Factors.Format = FormatNoAnalog
	s.RawPosHyst = rec[25]
	s.RawNegHyst = rec[26]
	name, err := decodeIDString(rec[31], rec[compactFixedLen:])
	if err != nil {
		return nil, err
	}
	s.Name = name
	share := int(rec[23] & 0x0f)
	if share <= 1 {
		return []SDR{s}, nil
	}
	// Record sharing (IPMI 2.0 §43.2): share count sensors with
	// consecutive numbers; each name gets an instance modifier suffix,
	// numeric or alphabetic, starting at the modifier offset.
	modType := (rec[23] >> 4) & 0x03
	modOff := int(rec[24] & 0x7f)
	instIncr := rec[24]&0x80 != 0
	out := make([]SDR, 0, share)
	for i := 0; i < share && int(s.Number)+i <= 0xff; i++ {
		c := s
		c.Number = s.Number + uint8(i)
		if instIncr {
			c.EntityInst = (s.EntityInst + uint8(i)) & 0x7f
		}
		c.Name = s.Name + instanceSuffix(modType, modOff+i)
		out = append(out, c)
	}
	return out, nil
}

func instanceSuffix(modType uint8, n int) string {
	if modType == 1 { // alpha: A..Z, AA..ZZ
		if n < 26 {
			return string(rune('A' + n))
		}
		return string(rune('A'+(n/26-1)%26)) + string(rune('A'+n%26))
	}
	return fmt.Sprint(n)
}

// decodeIDString decodes an SDR ID string from its type/length byte and
// the bytes that follow it (which may be longer than the string).
func decodeIDString(typeLen uint8, b []byte) (string, error) {
	n := int(typeLen & 0x1f)
	chars := -1
	if typ := typeLen >> 6; typ == 2 && n > len(b) && (n*6+7)/8 <= len(b) {
		// 6-bit packed with the length counted in characters rather than
		// bytes, as OpenIPMI's sdrcomp writes it.
		chars, n = n, (n*6+7)/8
	}
	if n > len(b) {
		return "", fmt.Errorf("%w: id string claims %d bytes, record has %d", ErrShortRecord, n, len(b))
	}
	b = b[:n]
	var s string
	switch typeLen >> 6 {
	case 0: // unicode (in practice: ASCII bytes)
		s = string(b)
	case 1: // BCD plus
		const digits = "0123456789 -.:,_"
		var sb strings.Builder
		for _, c := range b {
			sb.WriteByte(digits[c&0x0f])
			sb.WriteByte(digits[c>>4])
		}
		s = sb.String()
	case 2: // 6-bit packed ASCII
		var sb strings.Builder
		var acc, bits uint
		for _, c := range b {
			acc |= uint(c) << bits
			bits += 8
			for bits >= 6 {
				sb.WriteByte(byte(acc&0x3f) + 0x20)
				acc >>= 6
				bits -= 6
			}
		}
		s = sb.String()
		if chars >= 0 && chars < len(s) {
			s = s[:chars]
		}
	default: // 8-bit ASCII + Latin 1
		s = string(b)
	}
	s = strings.TrimRight(s, "\x00 ")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s), nil
}

func signExtend(v, bits int) int {
	sign := 1 << (bits - 1)
	v &= (1 << bits) - 1
	return (v ^ sign) - sign
}
