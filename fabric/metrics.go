package fabric

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the fabric to Prometheus. It reads whatever topology
// get returns at scrape time (the snapshot's), never sysfs:
//
//	boardd_pcie_link_speed_gts{bdf}           current link speed, GT/s (0: no link)
//	boardd_pcie_link_width{bdf}               current link width, lanes
//	boardd_pcie_link_degraded{bdf}            1 if trained below what both ends support
//	boardd_pcie_aer_errors_total{bdf,severity} AER errors (correctable|nonfatal|fatal)
//	boardd_pcie_device_present{port}          1 if a switch/root port has a function below it
type Collector struct {
	get func() *Topology

	speed, width, degraded, aer, present *prometheus.Desc
}

// NewCollector returns a collector of the topology get returns (may be nil).
func NewCollector(get func() *Topology) *Collector {
	return &Collector{
		get:      get,
		speed:    prometheus.NewDesc("boardd_pcie_link_speed_gts", "Current PCIe link speed in GT/s (0 when the link is down or unknown).", []string{"bdf"}, nil),
		width:    prometheus.NewDesc("boardd_pcie_link_width", "Current PCIe link width in lanes.", []string{"bdf"}, nil),
		degraded: prometheus.NewDesc("boardd_pcie_link_degraded", "1 if the link trained below the speed or width both of its ends support.", []string{"bdf"}, nil),
		aer:      prometheus.NewDesc("boardd_pcie_aer_errors_total", "PCIe AER errors reported by the function, by severity.", []string{"bdf", "severity"}, nil),
		present:  prometheus.NewDesc("boardd_pcie_device_present", "1 if a function is present below the PCIe root or downstream port.", []string{"port"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.speed, c.width, c.degraded, c.aer, c.present} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	t := c.get()
	if t == nil {
		return
	}
	for i := range t.Devices {
		d := &t.Devices[i]
		if d.Link != nil {
			ch <- prometheus.MustNewConstMetric(c.speed, prometheus.GaugeValue, d.Link.Speed, d.BDF)
			ch <- prometheus.MustNewConstMetric(c.width, prometheus.GaugeValue, float64(d.Link.Width), d.BDF)
			ch <- prometheus.MustNewConstMetric(c.degraded, prometheus.GaugeValue, b2f(Degraded(t, d)), d.BDF)
		}
		if d.AER != nil {
			ch <- prometheus.MustNewConstMetric(c.aer, prometheus.CounterValue, float64(d.AER.Correctable.Total), d.BDF, "correctable")
			ch <- prometheus.MustNewConstMetric(c.aer, prometheus.CounterValue, float64(d.AER.NonFatal.Total), d.BDF, "nonfatal")
			ch <- prometheus.MustNewConstMetric(c.aer, prometheus.CounterValue, float64(d.AER.Fatal.Total), d.BDF, "fatal")
		}
		if d.Type == TypeRootPort || d.Type == TypeDownstream {
			ch <- prometheus.MustNewConstMetric(c.present, prometheus.GaugeValue, b2f(t.LinkUp(d.BDF)), d.BDF)
		}
	}
}

// Degraded reports whether the link above d (d an endpoint or upstream
// port) or below it (d a port with one function below) trained below the
// speed or width both its ends support.
func Degraded(t *Topology, d *Device) bool {
	up, down := d, d
	if d.Type.IsPort() && d.Type != TypeUpstream {
		ch := t.Children(d.BDF)
		if len(ch) == 0 {
			return false
		}
		down = ch[0]
	} else {
		up = t.Device(d.Parent)
		if up == nil {
			return false
		}
	}
	l := up.Link
	if l == nil || l.Speed == 0 {
		l = down.Link
	}
	if l == nil || l.Speed == 0 || l.Width == 0 {
		return false
	}
	s := minKnown(up.Link, down.Link, func(l *Link) float64 { return l.MaxSpeed })
	w := minKnown(up.Link, down.Link, func(l *Link) float64 { return float64(l.MaxWidth) })
	return (s > 0 && l.Speed < s) || (w > 0 && float64(l.Width) < w)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
