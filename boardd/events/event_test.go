package events

import (
	"testing"

	"podos.dev/podos/boardd/health"
)

func TestStatusMessageID(t *testing.T) {
	for _, tt := range []struct {
		s    health.State
		want string
	}{
		{health.OK, MsgStatusChangedOK},
		{health.Warning, MsgStatusChangedWarning},
		{health.Critical, MsgStatusChangedCritical},
		{health.Unavailable, MsgErrorsDetected},
	} {
		if got := StatusMessageID(tt.s); got != tt.want {
			t.Errorf("StatusMessageID(%v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}
