package fabric

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	topo := clone(t, scanFixture(t, fixture(t, "sys-emulated")))
	topo.Device("0000:04:00.0").AER.Correctable.Total = 7
	topo.Device("0000:02:01.0").Link.MaxWidth = 4
	topo.Device("0000:04:00.0").Link.MaxWidth = 4
	c := NewCollector(func() *Topology { return topo })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP boardd_pcie_aer_errors_total PCIe AER errors reported by the function, by severity.
# TYPE boardd_pcie_aer_errors_total counter
boardd_pcie_aer_errors_total{bdf="0000:00:03.0",severity="correctable"} 0
boardd_pcie_aer_errors_total{bdf="0000:00:03.0",severity="fatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:00:03.0",severity="nonfatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:01:00.0",severity="correctable"} 0
boardd_pcie_aer_errors_total{bdf="0000:01:00.0",severity="fatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:01:00.0",severity="nonfatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:00.0",severity="correctable"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:00.0",severity="fatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:00.0",severity="nonfatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:01.0",severity="correctable"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:01.0",severity="fatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:01.0",severity="nonfatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:02.0",severity="correctable"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:02.0",severity="fatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:02:02.0",severity="nonfatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:04:00.0",severity="correctable"} 7
boardd_pcie_aer_errors_total{bdf="0000:04:00.0",severity="fatal"} 0
boardd_pcie_aer_errors_total{bdf="0000:04:00.0",severity="nonfatal"} 0
# HELP boardd_pcie_device_present 1 if a function is present below the PCIe root or downstream port.
# TYPE boardd_pcie_device_present gauge
boardd_pcie_device_present{port="0000:00:03.0"} 1
boardd_pcie_device_present{port="0000:02:00.0"} 1
boardd_pcie_device_present{port="0000:02:01.0"} 1
boardd_pcie_device_present{port="0000:02:02.0"} 0
# HELP boardd_pcie_link_degraded 1 if the link trained below the speed or width both of its ends support.
# TYPE boardd_pcie_link_degraded gauge
boardd_pcie_link_degraded{bdf="0000:00:03.0"} 0
boardd_pcie_link_degraded{bdf="0000:01:00.0"} 0
boardd_pcie_link_degraded{bdf="0000:02:00.0"} 0
boardd_pcie_link_degraded{bdf="0000:02:01.0"} 1
boardd_pcie_link_degraded{bdf="0000:02:02.0"} 0
boardd_pcie_link_degraded{bdf="0000:03:00.0"} 0
boardd_pcie_link_degraded{bdf="0000:04:00.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "boardd_pcie_aer_errors_total", "boardd_pcie_device_present", "boardd_pcie_link_degraded"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "boardd_pcie_link_speed_gts"); n != 7 {
		t.Errorf("%d link speed series, want 7", n)
	}
}

func TestCollectorNil(t *testing.T) {
	if n := testutil.CollectAndCount(NewCollector(func() *Topology { return nil })); n != 0 {
		t.Errorf("nil topology gave %d series", n)
	}
}
