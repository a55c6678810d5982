package dial

import (
	"context"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/ipmisim"
)

func TestParse(t *testing.T) {
	tests := []struct {
		url     string
		want    Target
		errPart string // the error names this
	}{
		{url: "ipmi+lan://admin:password@127.0.0.1:29623", want: Target{Scheme: SchemeLAN, Host: "127.0.0.1", Port: 29623, Username: "admin", Password: "password"}},
		{url: "ipmi+lan://admin:p%40ss%3Aw@bmc.example", want: Target{Scheme: SchemeLAN, Host: "bmc.example", Port: 623, Username: "admin", Password: "p@ss:w"}},
		{url: "IPMI+LAN://root@[fe80::1]:624", want: Target{Scheme: SchemeLAN, Host: "fe80::1", Port: 624, Username: "root"}},
		{url: "ipmi+kcs:///dev/ipmi0", want: Target{Scheme: SchemeKCS, Device: "/dev/ipmi0"}},
		{url: "ipmi+kcs:///dev/ipmi/1", want: Target{Scheme: SchemeKCS, Device: "/dev/ipmi/1"}},
		{url: "redfish+https://admin:pw@10.0.0.2", want: Target{Scheme: SchemeRedfish, Host: "10.0.0.2", Port: 443, Username: "admin", Password: "pw"}},
		{url: "redfish+https://admin:pw@10.0.0.2:8443/?verify=true", want: Target{Scheme: SchemeRedfish, Host: "10.0.0.2", Port: 8443, Username: "admin", Password: "pw", Verify: true}},

		{url: "", errPart: "empty"},
		{url: "10.0.0.2", errPart: "no scheme"},
		{url: "ipmi://admin:pw@h", errPart: `scheme "ipmi" is not supported`},
		{url: "redfish+http://admin:pw@h", errPart: "not supported"},
		{url: "ipmi+kcs://dev/ipmi0", errPart: "three slashes"},
		{url: "ipmi+kcs:///dev/sda", errPart: "not /dev/ipmiN"},
		{url: "ipmi+kcs://root@/dev/ipmi0", errPart: "no credentials"},
		{url: "ipmi+lan:admin@h", errPart: "needs //"},
		{url: "ipmi+lan://admin:pw@", errPart: "no host"},
		{url: "ipmi+lan://h:623", errPart: "no user name"},
		{url: "ipmi+lan://admin:pw@h:0", errPart: "port"},
		{url: "ipmi+lan://admin:pw@h:70000", errPart: "port"},
		{url: "ipmi+lan://admin:secret@h:x", errPart: "malformed"},
		{url: "ipmi+lan://admin:pw@h/path", errPart: "unexpected path"},
		{url: "ipmi+lan://admin:pw@h?verify=true", errPart: `unknown parameter "verify"`},
		{url: "redfish+https://admin:pw@h?verify=maybe", errPart: "verify"},
		{url: "redfish+https://admin:pw@h#frag", errPart: "fragment"},
		{url: "ipmi+lan://a23456789abcdef01:pw@h", errPart: "user name longer"},
		{url: "ipmi+lan://admin:123456789012345678901@h", errPart: "password longer"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := Parse(tt.url)
			if tt.errPart != "" {
				if err == nil {
					t.Fatalf("Parse accepted it: %+v", got)
				}
				if !strings.Contains(err.Error(), tt.errPart) {
					t.Errorf("error %q does not say %q", err, tt.errPart)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error %q spans lines", err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q leaks the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if strings.Contains(got.String(), got.Password) && got.Password != "" {
				t.Errorf("String() %q shows the password", got.String())
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"ipmi+lan://admin:password@127.0.0.1:623", "ipmi+kcs:///dev/ipmi0",
		"redfish+https://u:p@h:8443/?verify=false", "ipmi+lan://[::1]:x", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := Parse(raw)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		switch got.Scheme {
		case SchemeKCS:
			if !strings.HasPrefix(got.Device, "/dev/ipmi") {
				t.Fatalf("device %q", got.Device)
			}
		case SchemeLAN, SchemeRedfish:
			if got.Host == "" || got.Username == "" || got.Port < 1 || got.Port > 65535 {
				t.Fatalf("incomplete target %+v from %q", got, raw)
			}
			// What String renders parses back to the same target, minus the password.
			back, err := Parse(got.String())
			if err != nil {
				t.Fatalf("String() %q does not parse: %v", got.String(), err)
			}
			got.Password, got.Verify = "", false
			if back != got {
				t.Fatalf("round trip %q -> %+v, want %+v", raw, back, got)
			}
		default:
			t.Fatalf("scheme %q accepted", got.Scheme)
		}
	})
}

func TestOpenLANAgainstIPMISim(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sim, err := ipmisim.Start(ctx, t, ipmisim.TestBoard(), ipmisim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, sim.URL(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Transport() != "lan" {
		t.Errorf("transport %q", c.Transport())
	}
	defs, err := c.Sensors(ctx)
	if err != nil || len(defs) != len(ipmisim.TestBoard().Sensors) {
		t.Fatalf("Sensors = %d, %v", len(defs), err)
	}
	if _, ok := c.(bmc.SELWriter); !ok {
		t.Error("LAN client is not a bmc.SELWriter")
	}

	// Wrong password: one line, no password echoed, not a hang.
	bad := strings.Replace(sim.URL(), ":password@", ":wrong@", 1)
	start := time.Now()
	if _, err := Open(ctx, bad, Options{Timeout: 300 * time.Millisecond, Retries: 1}); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Errorf("Open with a wrong password: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("wrong password took %v to fail", time.Since(start))
	}
}

func TestOpenKCSWithoutDevice(t *testing.T) {
	_, err := Open(context.Background(), "ipmi+kcs:///dev/ipmi250", Options{})
	if err == nil {
		t.Fatal("opened a device that does not exist")
	}
	if !strings.Contains(err.Error(), "/dev/ipmi250") {
		t.Errorf("error %q does not name the device", err)
	}
}
