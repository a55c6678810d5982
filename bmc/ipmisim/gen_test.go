package ipmisim

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	boardconfig "podos.dev/podos/board-configs"
)

func TestSensorsOfRejectsBadSimBlocks(t *testing.T) {
	sim := func(num, evt uint8) *boardconfig.SimSensor {
		return &boardconfig.SimSensor{Number: num, SensorType: 2, EventType: evt, M: 1}
	}
	tests := []struct {
		name    string
		sensors []boardconfig.Sensor
		errPart string
	}{
		{"none", []boardconfig.Sensor{{Name: "A"}}, "no sensor with a sim block"},
		{"long name", []boardconfig.Sensor{{Name: "A_NAME_LONGER_THAN_16", Sim: sim(1, 1)}}, "longer than 16"},
		{"quote", []boardconfig.Sensor{{Name: `A"B`, Sim: sim(1, 1)}}, "quote"},
		{"duplicate name", []boardconfig.Sensor{{Name: "A", Sim: sim(1, 1)}, {Name: "A", Sim: sim(2, 1)}}, "duplicate name"},
		{"duplicate number", []boardconfig.Sensor{{Name: "A", Sim: sim(1, 1)}, {Name: "B", Sim: sim(1, 1)}}, `already used by "A"`},
		{"number 0", []boardconfig.Sensor{{Name: "A", Sim: sim(0, 1)}}, "reserved"},
		{"no event type", []boardconfig.Sensor{{Name: "A", Sim: sim(1, 0)}}, "event_type is 0"},
		{"m too big", []boardconfig.Sensor{{Name: "A", Sim: &boardconfig.SimSensor{Number: 1, EventType: 1, M: 600}}}, "10 bits"},
		{"exp too big", []boardconfig.Sensor{{Name: "A", Sim: &boardconfig.SimSensor{Number: 1, EventType: 1, M: 1, RExp: 9}}}, "-8..7"},
		{"initial not a byte", []boardconfig.Sensor{{Name: "A", Sim: &boardconfig.SimSensor{Number: 1, EventType: 1, M: 1, Initial: 300}}}, "raw byte"},
		{"bad threshold key", []boardconfig.Sensor{{Name: "A", Sim: &boardconfig.SimSensor{Number: 1, EventType: 1, M: 1, RawThresholds: map[string]uint8{"ucr": 1}}}}, `"ucr"`},
		{"discrete bit 15", []boardconfig.Sensor{{Name: "A", Sim: &boardconfig.SimSensor{Number: 1, EventType: 0x6f, Initial: 0x8000}}}, "bit 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sensorsOf(&boardconfig.Config{Sensors: tt.sensors}, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.errPart) {
				t.Errorf("err = %v, want %q", err, tt.errPart)
			}
		})
	}
}

func TestSyntheticBoard(t *testing.T) {
	cfg := Synthetic(64)
	ss, err := sensorsOf(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 64 {
		t.Fatalf("%d sensors", len(ss))
	}
	if _, err := sensorsOf(Synthetic(300), t.TempDir()); err != nil {
		t.Errorf("Synthetic(300) (capped at 250): %v", err)
	}
}

func TestLanConfOptions(t *testing.T) {
	conf := lanConf(Options{StartCmd: "/x/board.sh", PoweroffWait: 3}, 1000, 1001, 1002)
	for _, want := range []string{"addr 127.0.0.1 1000", "console 127.0.0.1 1001", "serial 15 127.0.0.1 1002 codec VM",
		`startcmd "/x/board.sh"`, "startnow false", "poweroff_wait 3", "kill_wait 5", `user 2 true "admin" "password" admin`} {
		if !strings.Contains(conf, want) {
			t.Errorf("lan.conf lacks %q:\n%s", want, conf)
		}
	}
	if c := lanConf(Options{}, 1, 2, 0); strings.Contains(c, "serial") || strings.Contains(c, "startcmd") {
		t.Errorf("lan.conf has serial or startcmd unasked:\n%s", c)
	}
}

func TestSerialPortListens(t *testing.T) {
	t.Parallel()
	port, err := FreeTCPPort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, t, TestBoard(), Options{SerialPort: port})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", s.SerialAddr(), 5*time.Second)
	if err != nil {
		t.Fatalf("QEMU's chardev could not connect to %s: %v", s.SerialAddr(), err)
	}
	c.Close()
}
