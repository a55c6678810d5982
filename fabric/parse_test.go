package fabric

import (
	"strings"
	"testing"
)

func TestParseLinkSpeed(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"2.5 GT/s PCIe\n", 2.5, false},
		{"8.0 GT/s PCIe", 8, false},
		{"16.0 GT/s PCIe\n", 16, false},
		{"64.0 GT/s PCIe", 64, false},
		{"5 GT/s", 5, false}, // older kernels
		{"Unknown\n", 0, false},
		{"Unknown speed", 0, false},
		{"", 0, false},
		{"fast", 0, true},
		{"2.5 Gb/s", 0, true},
		{"NaN GT/s", 0, true},
		{"-8 GT/s PCIe", 0, true},
	} {
		got, err := ParseLinkSpeed(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseLinkSpeed(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseLinkWidth(t *testing.T) {
	for in, want := range map[string]int{"1\n": 1, "16": 16, "0": 0, "Unknown": 0, "255": 0} {
		if got, err := ParseLinkWidth(in); err != nil || got != want {
			t.Errorf("ParseLinkWidth(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"x4", "-1", "1000"} {
		if _, err := ParseLinkWidth(in); err == nil {
			t.Errorf("ParseLinkWidth(%q) accepted", in)
		}
	}
}

const aerCorrectable = `RxErr 0
BadTLP 2
BadDLLP 0
Rollover 0
Timeout 1
NonFatalErr 0
CorrIntErr 0
HeaderOF 0
TOTAL_ERR_COR 3
`

func TestParseAER(t *testing.T) {
	c, err := ParseAER([]byte(aerCorrectable))
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 3 || c.ByType["BadTLP"] != 2 || c.ByType["Timeout"] != 1 || len(c.ByType) != 8 {
		t.Errorf("ParseAER = %+v", c)
	}
	// No TOTAL line (older kernels): the sum.
	c, err = ParseAER([]byte("DLP 1\nSDES 4\n"))
	if err != nil || c.Total != 5 {
		t.Errorf("ParseAER without total = %+v, %v", c, err)
	}
	c, err = ParseAER(nil)
	if err != nil || c.Total != 0 {
		t.Errorf("ParseAER(empty) = %+v, %v", c, err)
	}
	for _, bad := range []string{"DLP\n", "DLP x\n", "DLP 1 2\n", "TOTAL_ERR_FATAL -1\n"} {
		if _, err := ParseAER([]byte(bad)); err == nil {
			t.Errorf("ParseAER(%q) accepted", bad)
		}
	}
}

func FuzzParseAER(f *testing.F) {
	f.Add([]byte(aerCorrectable))
	f.Add([]byte("Undefined 0\nDLP 0\nSDES 0\nTLP 1\nFCP 0\nCmpltTO 0\nCmpltAbrt 0\nUnxCmplt 0\nRxOF 0\nMalfTLP 0\nECRC 0\nUnsupReq 0\nACSViol 0\nUncorrIntErr 0\nBlockedTLP 0\nAtomicOpBlocked 0\nTLPBlockedErr 0\nPoisonTLPBlocked 0\nTOTAL_ERR_NONFATAL 1\n"))
	f.Add([]byte("DLP 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAER(b)
		if err != nil {
			return
		}
		if c.ByType == nil {
			t.Fatal("nil ByType on success")
		}
		if !strings.Contains(string(b), "TOTAL_ERR_") {
			var sum uint64
			for _, v := range c.ByType {
				sum += v
			}
			if sum != c.Total {
				t.Fatalf("total %d != sum %d", c.Total, sum)
			}
		}
	})
}

func FuzzParseLinkSpeed(f *testing.F) {
	for _, s := range []string{"2.5 GT/s PCIe\n", "8.0 GT/s PCIe", "Unknown\n", "5 GT/s", "32.0 GT/s PCIe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseLinkSpeed(s)
		if err != nil {
			return
		}
		if v < 0 || v > 1024 || v != v {
			t.Fatalf("ParseLinkSpeed(%q) = %v", s, v)
		}
	})
}
