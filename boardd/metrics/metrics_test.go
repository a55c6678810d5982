package metrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"podos.dev/podos/bmc"
	"podos.dev/podos/boardd/health"
	"podos.dev/podos/boardd/snapshot"
)

func testSnapshot() *snapshot.Snapshot {
	s := &snapshot.Snapshot{Seq: 7, Time: time.Unix(1000, 0)}
	s.Board.ID = "blade1"
	s.BMC = snapshot.BMC{Up: true, Transport: "kcs"}
	s.CollectDuration = 25 * time.Millisecond
	th := func(id, name string, u bmc.Unit, c bmc.Class, v float64, st health.State, sub health.Subsystem) snapshot.Sensor {
		return snapshot.Sensor{Def: bmc.SensorDef{ID: id, Name: name, Kind: bmc.KindThreshold, Unit: u, Class: c},
			Reading: bmc.Reading{ID: id, Value: v, Available: true}, State: st, Subsystem: sub}
	}
	s.Sensors = []snapshot.Sensor{
		th("20-0-01", "PSU_VIN", bmc.UnitVolts, bmc.ClassVoltage, 24.2, health.OK, health.Power),
		th("20-0-02", "PSU_IIN", bmc.UnitAmperes, bmc.ClassCurrent, 10, health.OK, health.Power),
		th("20-0-03", "PSU_PIN", bmc.UnitWatts, bmc.ClassCurrent, 240, health.Warning, health.Power), // Watts on a current-type sensor
		th("20-0-10", "OIL_TEMP", bmc.UnitCelsius, bmc.ClassTemperature, -3.5, health.OK, health.Thermal),
		th("20-0-18", "PUMP1", bmc.UnitRPM, bmc.ClassPump, 3000, health.OK, health.Cooling),
		th("20-0-1a", "FAN1", bmc.UnitRPM, bmc.ClassFan, 4000, health.OK, health.Cooling),
		{Def: bmc.SensorDef{ID: "20-0-0a", Name: "FUSE1", Kind: bmc.KindDiscrete, Class: bmc.ClassFuse},
			Reading: bmc.Reading{State: 2, Available: true}, State: health.Critical, Subsystem: health.Fuses},
		{Def: bmc.SensorDef{ID: "20-0-11", Name: "INLET", Kind: bmc.KindThreshold, Unit: bmc.UnitCelsius},
			Reading: bmc.Reading{Err: "no reply"}, State: health.Unavailable, Subsystem: health.Thermal},
	}
	s.Subsystems = map[health.Subsystem]snapshot.Rollup{health.Fuses: {State: health.Critical}, health.Power: {State: health.Warning}}
	s.Health = snapshot.Rollup{State: health.Critical}
	return s
}

func TestCollector(t *testing.T) {
	st := snapshot.NewStore()
	st.Swap(testSnapshot())
	c := NewCollector(st)
	want := `
# HELP boardd_bmc_up 1 if the last poll of the BMC succeeded.
# TYPE boardd_bmc_up gauge
boardd_bmc_up{transport="kcs"} 1
# HELP boardd_current_amperes Current sensor reading.
# TYPE boardd_current_amperes gauge
boardd_current_amperes{id="20-0-02",name="PSU_IIN"} 10
# HELP boardd_fan_speed_rpm Fan speed.
# TYPE boardd_fan_speed_rpm gauge
boardd_fan_speed_rpm{id="20-0-1a",name="FAN1"} 4000
# HELP boardd_health_state Board roll-up health: 0 OK, 1 Warning, 2 Critical, 3 Unavailable.
# TYPE boardd_health_state gauge
boardd_health_state{board="blade1"} 2
# HELP boardd_power_watts Power sensor reading.
# TYPE boardd_power_watts gauge
boardd_power_watts{id="20-0-03",name="PSU_PIN"} 240
# HELP boardd_pump_speed_rpm Coolant pump speed.
# TYPE boardd_pump_speed_rpm gauge
boardd_pump_speed_rpm{id="20-0-18",name="PUMP1"} 3000
# HELP boardd_sensor_state Sensor health: 0 OK, 1 Warning, 2 Critical, 3 Unavailable.
# TYPE boardd_sensor_state gauge
boardd_sensor_state{id="20-0-01",name="PSU_VIN",subsystem="Power"} 0
boardd_sensor_state{id="20-0-02",name="PSU_IIN",subsystem="Power"} 0
boardd_sensor_state{id="20-0-03",name="PSU_PIN",subsystem="Power"} 1
boardd_sensor_state{id="20-0-0a",name="FUSE1",subsystem="Fuses"} 2
boardd_sensor_state{id="20-0-10",name="OIL_TEMP",subsystem="Thermal"} 0
boardd_sensor_state{id="20-0-11",name="INLET",subsystem="Thermal"} 3
boardd_sensor_state{id="20-0-18",name="PUMP1",subsystem="Cooling"} 0
boardd_sensor_state{id="20-0-1a",name="FAN1",subsystem="Cooling"} 0
# HELP boardd_subsystem_state Subsystem roll-up health: 0 OK, 1 Warning, 2 Critical, 3 Unavailable.
# TYPE boardd_subsystem_state gauge
boardd_subsystem_state{subsystem="Fuses"} 2
boardd_subsystem_state{subsystem="Power"} 1
# HELP boardd_temperature_celsius Temperature sensor reading.
# TYPE boardd_temperature_celsius gauge
boardd_temperature_celsius{id="20-0-10",name="OIL_TEMP"} -3.5
# HELP boardd_voltage_volts Voltage sensor reading.
# TYPE boardd_voltage_volts gauge
boardd_voltage_volts{id="20-0-01",name="PSU_VIN"} 24.2
# HELP boardd_collect_duration_seconds How long the last BMC poll took.
# TYPE boardd_collect_duration_seconds gauge
boardd_collect_duration_seconds 0.025
# HELP boardd_snapshot_seq Sequence number of the current snapshot (grows at every poll).
# TYPE boardd_snapshot_seq gauge
boardd_snapshot_seq 7
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Errorf("lint: %v %+v", err, probs)
	}
}

func TestEmptyStoreAndHandler(t *testing.T) {
	st := snapshot.NewStore() // before the first poll
	rec := httptest.NewRecorder()
	Handler(NewRegistry(st)).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `boardd_bmc_up{transport=""} 0`) ||
		!strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_cpu_seconds_total") {
		t.Errorf("%d\n%s", rec.Code, body)
	}
	if strings.Contains(body, "boardd_sensor_state") || strings.Contains(body, "boardd_health_state") {
		t.Errorf("series for sensors or a board before the first poll:\n%s", body)
	}
}
