package ipmisim

import (
	"fmt"

	boardconfig "podos.dev/podos/board-configs"
)

// Sensor type, event type, entity and unit codes used by the boards below.
const (
	stTemp, stVolt, stCurr, stFan, stPSU, stCooling = 0x01, 0x02, 0x03, 0x04, 0x08, 0x0a
	evThreshold, evDigital, evSpecific              = 0x01, 0x03, 0x6f
	entPSU, entPowerModule, entBoard, entCPU        = 0x0a, 0x14, 0x07, 0x03
	entFan, entCoolingUnit                          = 0x1d, 0x1e
	unitC, unitV, unitA, unitW, unitRPM             = 1, 4, 5, 6, 18
)

func thresh(lnr, lc, lnc, unc, uc, unr int) map[string]uint8 {
	m := map[string]uint8{}
	for k, v := range map[string]int{"lnr": lnr, "lc": lc, "lnc": lnc, "unc": unc, "uc": uc, "unr": unr} {
		if v >= 0 {
			m[k] = uint8(v)
		}
	}
	return m
}

// TestBoard is a small RuggedPOD-like board that exercises every
// conversion and class: scaled (M≠1), offset (B≠0), exponents, a signed
// (2's complement) temperature, Watts on a Current-type sensor, pump vs
// fan, PSU status (0x08/0x6f), a fuse (0x08/0x03) and a leak detector.
// Values (raw -> unit) are documented per sensor.
func TestBoard() *boardconfig.Config {
	s := func(name string, role boardconfig.Role, sim boardconfig.SimSensor) boardconfig.Sensor {
		return boardconfig.Sensor{Name: name, Role: role, Sim: &sim}
	}
	return &boardconfig.Config{
		APIVersion: "podos.dev/v1",
		Board:      boardconfig.Board{ID: "test-pod", Model: "ipmisim test board", Slot: 1},
		Sensors: []boardconfig.Sensor{
			// y = 0.1*raw V: raw 240 -> 24.0 V; thresholds 19.0/20.0/22.0 .. 25.0/25.2/25.5 V
			s("PSU_IN_V", boardconfig.RolePSUInput, boardconfig.SimSensor{Number: 0x01, SensorType: stVolt, EventType: evThreshold,
				EntityID: entPSU, EntityInst: 1, Unit: unitV, M: 1, RExp: -1,
				RawThresholds: thresh(190, 200, 220, 250, 252, 255), RawHysteresis: 2, Initial: 240}),
			// y = (5*raw + (-10)*10^1) * 10^-2 A = 0.05*raw - 1.0: raw 120 -> 5.0 A
			s("PSU_IN_A", boardconfig.RolePSUInput, boardconfig.SimSensor{Number: 0x02, SensorType: stCurr, EventType: evThreshold,
				EntityID: entPSU, EntityInst: 1, Unit: unitA, M: 5, B: -10, BExp: 1, RExp: -2,
				RawThresholds: thresh(-1, -1, -1, 200, 220, 240), RawHysteresis: 4, Initial: 120}),
			// Watts on a Current-type sensor: y = 2*raw W: raw 60 -> 120 W
			s("PSU_IN_W", boardconfig.RolePSUInput, boardconfig.SimSensor{Number: 0x03, SensorType: stCurr, EventType: evThreshold,
				EntityID: entPSU, EntityInst: 1, Unit: unitW, M: 2,
				RawThresholds: thresh(-1, -1, -1, 200, 225, 250), Initial: 60}),
			// DC/DC output: y = (raw + 2*10^1) * 10^-2 = 0.01*raw + 0.2 V: raw 100 -> 1.2 V
			s("DCDC1_OUT_V", boardconfig.RolePSUOutput, boardconfig.SimSensor{Number: 0x04, SensorType: stVolt, EventType: evThreshold,
				EntityID: entPowerModule, EntityInst: 1, Unit: unitV, M: 1, B: 2, BExp: 1, RExp: -2,
				RawThresholds: thresh(80, 85, 90, 110, 115, 120), RawHysteresis: 1, Initial: 100}),
			// signed: y = raw °C, raw 251 (-5) -> -5 °C
			s("INLET_TEMP", boardconfig.RoleTempInlet, boardconfig.SimSensor{Number: 0x10, SensorType: stTemp, EventType: evThreshold,
				EntityID: entCoolingUnit, EntityInst: 1, Unit: unitC, Signed: true, M: 1,
				RawThresholds: thresh(0xec /* -20 */, 0xf6 /* -10 */, -1, 40, 50, 60), RawHysteresis: 1, Initial: 251}),
			// y = 0.5*raw °C: raw 80 -> 40 °C
			s("OIL_TEMP", boardconfig.RoleTempOil, boardconfig.SimSensor{Number: 0x11, SensorType: stTemp, EventType: evThreshold,
				EntityID: entBoard, EntityInst: 1, Unit: unitC, M: 5, RExp: -1,
				RawThresholds: thresh(-1, -1, -1, 110, 120, 140), RawHysteresis: 2, Initial: 80}),
			s("CPU_TEMP", boardconfig.RoleTempCPU, boardconfig.SimSensor{Number: 0x12, SensorType: stTemp, EventType: evThreshold,
				EntityID: entCPU, EntityInst: 1, Unit: unitC, M: 1,
				RawThresholds: thresh(-1, -1, -1, 85, 95, 105), Initial: 55}),
			// y = 50*raw RPM: raw 60 -> 3000 RPM; pump by name
			s("PUMP1", boardconfig.RolePump, boardconfig.SimSensor{Number: 0x20, SensorType: stFan, EventType: evThreshold,
				EntityID: entFan, EntityInst: 1, Unit: unitRPM, M: 50,
				RawThresholds: thresh(-1, 10, 20, -1, -1, -1), Initial: 60}),
			// pump by entity (cooling unit)
			s("COOLANT_FLOW2", boardconfig.RolePump, boardconfig.SimSensor{Number: 0x21, SensorType: stFan, EventType: evThreshold,
				EntityID: entCoolingUnit, EntityInst: 2, Unit: unitRPM, M: 50,
				RawThresholds: thresh(-1, 10, 20, -1, -1, -1), Initial: 58}),
			s("FAN1", boardconfig.RoleFan, boardconfig.SimSensor{Number: 0x22, SensorType: stFan, EventType: evThreshold,
				EntityID: entFan, EntityInst: 1, Unit: unitRPM, M: 100,
				RawThresholds: thresh(-1, 5, 8, -1, -1, -1), Initial: 40}),
			// PSU status, sensor-specific: bit 0 presence detected
			s("PSU_STATUS", boardconfig.RolePSUStatus, boardconfig.SimSensor{Number: 0x30, SensorType: stPSU, EventType: evSpecific,
				EntityID: entPSU, EntityInst: 1, Initial: 0x0001}),
			// fuse: digital discrete, bit 1 = state asserted (blown)
			s("FUSE_BLADE1", boardconfig.RoleFuse, boardconfig.SimSensor{Number: 0x31, SensorType: stPSU, EventType: evDigital,
				EntityID: entPowerModule, EntityInst: 1, Initial: 0x0001}),
			s("LEAK_DETECT", boardconfig.RoleLeak, boardconfig.SimSensor{Number: 0x40, SensorType: stCooling, EventType: evDigital,
				EntityID: entCoolingUnit, EntityInst: 1, Initial: 0x0001}),
		},
	}
}

// Synthetic returns a board with n threshold sensors (n <= 250) for
// benchmarks: a mix of volts, amps, watts, temperatures and fan speeds
// with thresholds, named SYN_000.. and numbered 1..n.
func Synthetic(n int) *boardconfig.Config {
	if n > 250 {
		n = 250
	}
	cfg := &boardconfig.Config{
		APIVersion: "podos.dev/v1",
		Board:      boardconfig.Board{ID: fmt.Sprintf("synthetic-%d", n), Model: "synthetic", Slot: 1},
	}
	kinds := []boardconfig.SimSensor{
		{SensorType: stVolt, Unit: unitV, M: 1, RExp: -1, EntityID: entPSU},
		{SensorType: stCurr, Unit: unitA, M: 5, B: -10, BExp: 1, RExp: -2, EntityID: entPSU},
		{SensorType: stCurr, Unit: unitW, M: 2, EntityID: entPSU},
		{SensorType: stTemp, Unit: unitC, M: 1, Signed: true, EntityID: entBoard},
		{SensorType: stFan, Unit: unitRPM, M: 50, EntityID: entFan},
	}
	for i := 0; i < n; i++ {
		sim := kinds[i%len(kinds)]
		sim.Number = uint8(i + 1)
		sim.EventType = evThreshold
		sim.EntityInst = uint8(i%100 + 1)
		sim.RawThresholds = thresh(10, 20, 30, 100, 110, 120)
		sim.RawHysteresis = 1
		sim.Initial = uint16(40 + i%50)
		cfg.Sensors = append(cfg.Sensors, boardconfig.Sensor{
			Name: fmt.Sprintf("SYN_%03d", i), Role: boardconfig.RoleOther, Sim: &sim,
		})
	}
	return cfg
}
