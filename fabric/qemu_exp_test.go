package fabric_test

import (
	"testing"
	"time"

	"podos.dev/podos/fabric/internal/qemuboard"
)

func TestQEMUExpAER(t *testing.T) {
	b, a, _ := bootFabric(t, false, nil)
	if _, err := a.Wait(ctxT(t, 3*time.Minute), "first", func(*qemuboard.Report) bool { return true }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		out, err := b.QMP().HMP(ctxT(t, 30*time.Second), "pcie_aer_inject_error up1 POISON_TLP")
		t.Logf("inject: %q %v", out, err)
		time.Sleep(4 * time.Second)
		a.Wait(ctxT(t, 100*time.Millisecond), "x", func(*qemuboard.Report) bool { return false })
		t.Logf("aer %v root %v links %v", a.Last.AER, a.Last.RootAER, a.Last.Links["0000:01:00.0"])
	}
	b.Send("poweroff")
	t.Log(tail(b.Console(), 5))
}
