package ipmi

// Reading conversion is written by hand: go-ipmi's ConvertReading lives on
// its SDR types and pulls the factors from them; ours works on the small
// Factors value that DecodeSDR produces, is pure, and is fuzzed.

import (
	"errors"
	"fmt"
	"math"
)

// ErrNoAnalog is returned when a sensor has no analog reading (compact
// records, or full records whose analog data format is "no analog").
var ErrNoAnalog = errors.New("sensor has no analog reading")

// ErrLinearization is returned for non-linear sensors: only linear
// (linearization 0) conversion is supported. Sensors with another
// linearization (ln, log, 1/x...) or a non-linear 0x70-0x7f curve are
// reported with their reading unavailable.
var ErrLinearization = errors.New("unsupported sensor linearization (only linear is supported)")

// rawValue turns a raw reading byte into the signed integer x of the
// conversion formula according to the analog data format.
func rawValue(raw uint8, format uint8) (int, error) {
	switch format {
	case FormatUnsigned:
		return int(raw), nil
	case FormatOnes:
		if raw&0x80 != 0 {
			return -int(^raw & 0x7f), nil
		}
		return int(raw), nil
	case FormatTwos:
		return int(int8(raw)), nil
	default:
		return 0, ErrNoAnalog
	}
}

// ConvertReading converts a raw reading (or raw threshold) to the
// sensor's unit: y = (M*x + B*10^BExp) * 10^RExp. Only linear sensors are
// supported.
func ConvertReading(f Factors, raw uint8) (float64, error) {
	if f.Linearization != 0 {
		return 0, fmt.Errorf("%w: 0x%02x", ErrLinearization, f.Linearization)
	}
	x, err := rawValue(raw, f.Format)
	if err != nil {
		return 0, err
	}
	y := (float64(f.M)*float64(x) + float64(f.B)*pow10(f.BExp)) * pow10(f.RExp)
	return round(y, f.RExp), nil
}

// ConvertHysteresis converts a raw hysteresis value, which is an unsigned
// offset in raw counts: only M and RExp apply (no B, no sign).
func ConvertHysteresis(f Factors, raw uint8) (float64, error) {
	if f.Linearization != 0 {
		return 0, fmt.Errorf("%w: 0x%02x", ErrLinearization, f.Linearization)
	}
	if f.Format == FormatNoAnalog {
		return 0, ErrNoAnalog
	}
	y := math.Abs(float64(f.M)) * float64(raw) * pow10(f.RExp)
	return round(y, f.RExp), nil
}

func pow10(e int) float64 { return math.Pow10(e) }

// round removes binary floating-point noise: a result with RExp = -2 has
// at most a few significant decimals, so 10.100000000000001 becomes 10.1.
func round(y float64, rexp int) float64 {
	digits := 6
	if rexp < 0 {
		digits += -rexp
	}
	p := math.Pow10(digits)
	r := math.Round(y*p) / p
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return y
	}
	return r
}
