// Package bmctest has a stand-in bmc.Client for unit tests of code that
// needs some BMC but tests something else (daemon wiring, plugs). Tests
// of BMC behaviour use a real ipmi_sim (bmc/ipmisim) instead.
package bmctest

import (
	"context"
	"time"

	"podos.dev/podos/bmc"
	"podos.dev/podos/bmc/dial"
)

// Stub is a BMC with one 12 V rail that always reads 12.
type Stub struct{}

// Transport implements bmc.Client.
func (Stub) Transport() string { return "lan" }

// Close implements bmc.Client.
func (Stub) Close() error { return nil }

// Sensors implements bmc.Client.
func (Stub) Sensors(context.Context) ([]bmc.SensorDef, error) {
	return []bmc.SensorDef{{ID: "20-0-01", Name: "V", Kind: bmc.KindThreshold, Unit: bmc.UnitVolts, Class: bmc.ClassVoltage}}, nil
}

// Read implements bmc.Client.
func (Stub) Read(_ context.Context, defs []bmc.SensorDef) ([]bmc.Reading, error) {
	out := make([]bmc.Reading, len(defs))
	for i, d := range defs {
		out[i] = bmc.Reading{ID: d.ID, Value: 12, Available: true, Time: time.Now()}
	}
	return out, nil
}

// Dial is a daemon dial function that always returns a Stub.
func Dial(context.Context, string, dial.Options) (bmc.Client, error) { return Stub{}, nil }
