package ipmisim

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartFailsClearlyOnTakenPort(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err = Start(ctx, t, TestBoard(), Options{LANPort: port})
	if err == nil {
		t.Fatal("started on a taken LAN port")
	}
	if !strings.Contains(err.Error(), "Address already in use") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q does not say, on one line, that the port is taken", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("took %v to fail", took)
	}
}
