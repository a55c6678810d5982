package health

import "testing"

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{OK: "OK", Warning: "Warning", Critical: "Critical", Unavailable: "Unavailable", State(9): "Unknown"} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", int(s), got, want)
		}
	}
}

func TestWorse(t *testing.T) {
	order := []State{OK, Unavailable, Warning, Critical}
	for i, a := range order {
		for j, b := range order {
			want := a
			if j > i {
				want = b
			}
			if got := Worse(a, b); got != want {
				t.Errorf("Worse(%v, %v) = %v, want %v", a, b, got, want)
			}
		}
	}
}
