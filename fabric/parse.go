package fabric

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ParseLinkSpeed parses a current_link_speed or max_link_speed file:
// "8.0 GT/s PCIe", "2.5 GT/s" (older kernels), "Unknown" (no link: 0).
// procfs' sysfs.PciDevices has the same parser but folds "Unknown" into
// "no file", and fabric needs a down link to read as speed 0.
func ParseLinkSpeed(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "Unknown") {
		return 0, nil
	}
	num, rest, ok := strings.Cut(s, " ")
	if !ok || !strings.HasPrefix(strings.TrimSpace(rest), "GT/s") {
		return 0, fmt.Errorf("link speed %q: want \"<n> GT/s [PCIe]\"", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v > 1024 || v != v {
		return 0, fmt.Errorf("link speed %q: bad number", s)
	}
	return v, nil
}

// ParseLinkWidth parses a current_link_width or max_link_width file ("4").
func ParseLinkWidth(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "Unknown") {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("link width %q: %w", s, err)
	}
	if v > 32 {
		// PCIe links are x1..x32: more is a register read as all ones (a
		// function in error recovery, or gone): unknown.
		return 0, nil
	}
	return int(v), nil
}

// ParseAER parses an aer_dev_correctable, aer_dev_nonfatal or
// aer_dev_fatal file: one "<ErrorName> <count>" line per error type and a
// "TOTAL_ERR_COR|TOTAL_ERR_NONFATAL|TOTAL_ERR_FATAL <count>" line. If the
// total line is missing (older kernels) Total is the sum of the types.
// Hand-written: procfs parses these files only for network devices.
func ParseAER(b []byte) (AERCounters, error) {
	c := AERCounters{ByType: map[string]uint64{}}
	var sum uint64
	haveTotal := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return AERCounters{}, fmt.Errorf("aer line %d %q: want \"<name> <count>\"", n, line)
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return AERCounters{}, fmt.Errorf("aer line %d %q: %w", n, line, err)
		}
		if strings.HasPrefix(f[0], "TOTAL_ERR_") {
			c.Total, haveTotal = v, true
			continue
		}
		if _, dup := c.ByType[f[0]]; dup {
			return AERCounters{}, fmt.Errorf("aer line %d: %s listed twice", n, f[0])
		}
		c.ByType[f[0]] = v
		sum += v
	}
	if err := sc.Err(); err != nil {
		return AERCounters{}, fmt.Errorf("aer: %w", err)
	}
	if !haveTotal {
		c.Total = sum
	}
	return c, nil
}

// parseHex parses a sysfs hex attribute ("0x8086") of at most bits bits.
func parseHex(s string, bits int) (uint64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, bits)
	if err != nil {
		return 0, fmt.Errorf("hex value %q: %w", s, err)
	}
	return v, nil
}

// parseUint parses a decimal sysfs counter ("12").
func parseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("counter %q: %w", strings.TrimSpace(s), err)
	}
	return v, nil
}

func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
