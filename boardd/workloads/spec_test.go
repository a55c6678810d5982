package workloads

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Spec{Name: "demo", Image: "oci-archive:/usr/share/podos/images/demo.tar"}
	tests := []struct {
		name  string
		mut   func(*Spec)
		field string // "" = valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"registry ref", func(s *Spec) { s.Image = "registry.example/app:1.2" }, ""},
		{"no name", func(s *Spec) { s.Name = "" }, "name"},
		{"upper-case name", func(s *Spec) { s.Name = "Demo" }, "name"},
		{"slash in name", func(s *Spec) { s.Name = "a/b" }, "name"},
		{"long name", func(s *Spec) { s.Name = strings.Repeat("a", 64) }, "name"},
		{"no image", func(s *Spec) { s.Image = "" }, "image"},
		{"relative archive", func(s *Spec) { s.Image = "oci-archive:demo.tar" }, "image"},
		{"space in image", func(s *Spec) { s.Image = "a b" }, "image"},
		{"NUL in arg", func(s *Spec) { s.Args = []string{"ok", "a\x00"} }, "args[1]"},
		{"bad env key", func(s *Spec) { s.Env = map[string]string{"1X": "v"} }, "env.1X"},
		{"negative cpu", func(s *Spec) { s.CPU = -1 }, "cpu"},
		{"NaN cpu", func(s *Spec) { s.CPU = math.NaN() }, "cpu"},
		{"tiny cpu", func(s *Spec) { s.CPU = 0.001 }, "cpu"},
		{"negative memory", func(s *Spec) { s.MemoryMB = -5 }, "memory_mb"},
		{"tiny memory", func(s *Spec) { s.MemoryMB = 1 }, "memory_mb"},
		{"bad restart", func(s *Spec) { s.Restart = "sometimes" }, "restart"},
		{"bad priority", func(s *Spec) { s.Priority = "urgent" }, "priority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.mut(&s)
			n, err := Normalize(s)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if n.Restart != RestartAlways || n.Priority != PriorityNormal {
					t.Errorf("defaults not filled: %+v", n)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("field %q, want %q (%v)", fe.Field, tt.field, err)
			}
		})
	}
}

func TestHashChangesWithContent(t *testing.T) {
	a := Spec{Name: "a", Image: "x", Env: map[string]string{"A": "1", "B": "2"}}
	b := Spec{Name: "a", Image: "x", Env: map[string]string{"B": "2", "A": "1"}, Priority: "sheddable", Restart: "never"}
	if Hash(a) != Hash(b) {
		t.Error("hash depends on map order or on priority/restart (which need no new container)")
	}
	c := a
	c.MemoryMB = 64
	if Hash(a) == Hash(c) {
		t.Error("memory change not in hash")
	}
}

func TestLogRing(t *testing.T) {
	r := NewLogRing(100)
	w := r.Writer("stdout")
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\r\nthree"))
	if got := texts(r.Tail(0)); got != "one|two" {
		t.Fatalf("lines %q", got)
	}
	w.Flush()
	if got := texts(r.Tail(2)); got != "two|three" {
		t.Fatalf("tail 2: %q", got)
	}
	// The byte budget drops the oldest lines.
	for i := 0; i < 50; i++ {
		w.Write([]byte("0123456789\n"))
	}
	if n := len(r.Tail(0)); n > 10 || n < 8 {
		t.Errorf("kept %d lines of 11 bytes in a 100-byte ring", n)
	}
	// Followers get new lines; cancel closes the channel.
	tail, c, cancel := r.Follow(1)
	if len(tail) != 1 {
		t.Fatalf("follow tail %d", len(tail))
	}
	r.Writer("stderr").Write([]byte("live\n"))
	if l := <-c; l.Text != "live" || l.Stream != "stderr" {
		t.Errorf("followed %+v", l)
	}
	cancel()
	if _, open := <-c; open {
		t.Error("channel open after cancel")
	}
	cancel() // idempotent
	// A line longer than the limit is split, never lost.
	r2 := NewLogRing(1 << 20)
	r2.Writer("stdout").Write([]byte(strings.Repeat("x", maxLineLen+10) + "\n"))
	if ls := r2.Tail(0); len(ls) != 2 || len(ls[0].Text) != maxLineLen || len(ls[1].Text) != 10 {
		t.Errorf("long line split into %d", len(ls))
	}
}

func texts(ls []LogLine) string {
	var s []string
	for _, l := range ls {
		s = append(s, l.Text)
	}
	return strings.Join(s, "|")
}
