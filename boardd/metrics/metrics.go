// Package metrics exposes boardd's current snapshot to Prometheus. A
// custom collector reads the snapshot at scrape time, so a scrape never
// touches the hardware and costs nothing between scrapes.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"podos.dev/podos/bmc"
	"podos.dev/podos/boardd/snapshot"
)

var sensorLabels = []string{"id", "name"}

// Collector is a prometheus.Collector over a snapshot store.
type Collector struct {
	store *snapshot.Store

	temperature, voltage, current, power, fan, pump *prometheus.Desc
	sensorState, subsystemState, boardState         *prometheus.Desc
	bmcUp, collectDuration, snapshotSeq             *prometheus.Desc
}

// NewCollector returns a collector reading store at every scrape.
func NewCollector(store *snapshot.Store) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{
		store:           store,
		temperature:     d("boardd_temperature_celsius", "Temperature sensor reading.", sensorLabels...),
		voltage:         d("boardd_voltage_volts", "Voltage sensor reading.", sensorLabels...),
		current:         d("boardd_current_amperes", "Current sensor reading.", sensorLabels...),
		power:           d("boardd_power_watts", "Power sensor reading.", sensorLabels...),
		fan:             d("boardd_fan_speed_rpm", "Fan speed.", sensorLabels...),
		pump:            d("boardd_pump_speed_rpm", "Coolant pump speed.", sensorLabels...),
		sensorState:     d("boardd_sensor_state", "Sensor health: 0 OK, 1 Warning, 2 Critical, 3 Unavailable.", "id", "name", "subsystem"),
		subsystemState:  d("boardd_subsystem_state", "Subsystem roll-up health: 0 OK, 1 Warning, 2 Critical, 3 Unavailable.", "subsystem"),
		boardState:      d("boardd_health_state", "Board roll-up health: 0 OK, 1 Warning, 2 Critical, 3 Unavailable.", "board"),
		bmcUp:           d("boardd_bmc_up", "1 if the last poll of the BMC succeeded.", "transport"),
		collectDuration: d("boardd_collect_duration_seconds", "How long the last BMC poll took.", nil...),
		snapshotSeq:     d("boardd_snapshot_seq", "Sequence number of the current snapshot (grows at every poll).", nil...),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.temperature, c.voltage, c.current, c.power, c.fan, c.pump,
		c.sensorState, c.subsystemState, c.boardState, c.bmcUp, c.collectDuration, c.snapshotSeq} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.store.Load()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for i := range s.Sensors {
		x := &s.Sensors[i]
		id, name := x.Def.ID, x.Def.Name
		gauge(c.sensorState, float64(x.State), id, name, string(x.Subsystem))
		if !x.Reading.Available || x.Def.Kind == bmc.KindDiscrete {
			continue
		}
		if d := c.valueDesc(x.Def); d != nil {
			gauge(d, x.Reading.Value, id, name)
		}
	}
	for sub, r := range s.Subsystems {
		gauge(c.subsystemState, float64(r.State), string(sub))
	}
	if s.Board.ID != "" {
		gauge(c.boardState, float64(s.Health.State), s.Board.ID)
	}
	up := 0.0
	if s.BMC.Up {
		up = 1
	}
	gauge(c.bmcUp, up, s.BMC.Transport)
	gauge(c.collectDuration, s.CollectDuration.Seconds())
	gauge(c.snapshotSeq, float64(s.Seq))
}

// valueDesc picks the metric for a threshold sensor by its unit (many
// BMCs put Watts on a current-type sensor, so the unit decides).
func (c *Collector) valueDesc(def bmc.SensorDef) *prometheus.Desc {
	switch def.Unit {
	case bmc.UnitCelsius:
		return c.temperature
	case bmc.UnitVolts:
		return c.voltage
	case bmc.UnitAmperes:
		return c.current
	case bmc.UnitWatts:
		return c.power
	case bmc.UnitRPM:
		if def.Class == bmc.ClassPump {
			return c.pump
		}
		return c.fan
	}
	return nil
}

// NewRegistry returns boardd's own registry: the snapshot collector plus
// the Go runtime and process collectors.
func NewRegistry(store *snapshot.Store) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(NewCollector(store),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the registry in the Prometheus exposition format.
func Handler(r *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r, ErrorHandling: promhttp.ContinueOnError})
}
