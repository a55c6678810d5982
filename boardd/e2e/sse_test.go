package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"podos.dev/podos/boardd/redfish/redfishtest"
)

// sseRecord reads the SSE stream until an event record whose MessageId
// ends with suffix and whose OriginOfCondition is origin arrives.
// redfishtest.WaitEvent stops at the first record with the suffix, which
// may be the subsystem's or the board's, so this looks at every record.
func sseRecord(t *testing.T, c <-chan redfishtest.SSEEvent, suffix, origin string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c:
			if !ok {
				t.Fatalf("SSE stream closed waiting for %s of %s", suffix, origin)
			}
			m, err := ev.Event()
			if err != nil {
				t.Fatalf("SSE event %s: %v: %s", ev.ID, err, ev.Data)
			}
			recs, _ := m["Events"].([]any)
			for _, r := range recs {
				rec, _ := r.(map[string]any)
				id, _ := rec["MessageId"].(string)
				o, _ := rec["OriginOfCondition"].(map[string]any)
				if strings.HasSuffix(id, suffix) && o["@odata.id"] == origin {
					return rec
				}
			}
		case <-deadline:
			t.Fatalf("no SSE event %s with origin %s within %s", suffix, origin, timeout)
		}
	}
}

// waitSensorResource polls the sensor's Redfish resource until it shows
// health and reading (the event and the resource come from the same poll,
// but the test does not rely on which one is served first).
func waitSensorResource(t *testing.T, b *board, uri, health string, reading float64) {
	t.Helper()
	var h string
	var r float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := b.getJSON(t, uri)
		st, _ := m["Status"].(map[string]any)
		h, _ = st["Health"].(string)
		r, _ = m["Reading"].(float64)
		if h == health && math.Abs(r-reading) < 1e-6 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Health %q Reading %v, want %s %v", uri, h, r, health, reading)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSSEReceivesBMCFault: an under-voltage at the BMC (ipmi_sim) reaches
// an operator's Redfish SSE stream as a ResourceStatusChangedCritical
// event whose origin is the PSU_VIN sensor, the sensor resource turns
// Critical, and the recovery arrives as ResourceStatusChangedOK.
func TestSSEReceivesBMCFault(t *testing.T) {
	b := startBoard(t, boardOptions{})
	uri := b.sensorURI(t, "PSU_VIN")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := redfishtest.SSE(ctx, b.client, b.url+"/redfish/v1/EventService/SSE", adminUser, adminPW, "")
	if err != nil {
		t.Fatal(err)
	}
	// Without credentials the stream is refused.
	if _, err := redfishtest.SSE(ctx, b.client, b.url+"/redfish/v1/EventService/SSE", "", "", ""); err == nil || !strings.Contains(err.Error(), fmt.Sprint(http.StatusUnauthorized)) {
		t.Errorf("unauthenticated SSE: %v, want 401", err)
	}

	// PSU_VIN: lower critical 20.0 V, lower non-recoverable 18.0 V.
	injected := time.Now()
	b.setValue(t, "PSU_VIN", 19.4)
	rec := sseRecord(t, c, "ResourceStatusChangedCritical", uri, 60*time.Second)
	t.Logf("SSE Critical event %v %q %v after the BMC change", rec["EventId"], rec["Message"], time.Since(injected).Round(time.Millisecond))
	if sev, _ := rec["MessageSeverity"].(string); sev != "Critical" {
		t.Errorf("MessageSeverity %q, want Critical", sev)
	}
	waitSensorResource(t, b, uri, "Critical", 19.4)

	b.setValue(t, "PSU_VIN", 24.0)
	rec = sseRecord(t, c, "ResourceStatusChangedOK", uri, 60*time.Second)
	t.Logf("SSE OK event %v %q", rec["EventId"], rec["Message"])
	waitSensorResource(t, b, uri, "OK", 24)
}
