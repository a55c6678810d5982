package eventlog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"podos.dev/podos/boardd/events"
	"podos.dev/podos/boardd/health"
)

func sample(i int) events.Event {
	return events.Event{
		Kind:      events.KindSensor,
		Source:    fmt.Sprintf("20-0-%02x", i%256),
		Severity:  health.Critical,
		From:      health.OK,
		To:        health.Critical,
		Message:   fmt.Sprintf("sensor %d went critical", i),
		MessageID: "ResourceEvent.1.4.ResourceStatusChangedCritical",
		Origin:    "/redfish/v1/Chassis/b/Sensors/x",
		Data:      map[string]string{"reading": fmt.Sprint(i)},
	}
}

func mustOpen(t *testing.T, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t *testing.T, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := l.Append(sample(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func checkSeqs(t *testing.T, evs []events.Event, first, last uint64) {
	t.Helper()
	if uint64(len(evs)) != last-first+1 {
		t.Fatalf("got %d events, want seq %d..%d", len(evs), first, last)
	}
	for i, ev := range evs {
		if ev.Seq != first+uint64(i) {
			t.Fatalf("event %d has seq %d, want %d", i, ev.Seq, first+uint64(i))
		}
	}
}

func TestAppendAssignsSeqAndTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	l := mustOpen(t, Options{Dir: t.TempDir(), Now: func() time.Time { return now }})
	a, err := l.Append(sample(1))
	if err != nil {
		t.Fatal(err)
	}
	given := now.Add(-time.Hour)
	ev := sample(2)
	ev.Time = given
	ev.Seq = 999 // ignored: the log numbers events
	b, err := l.Append(ev)
	if err != nil {
		t.Fatal(err)
	}
	if a.Seq != 1 || b.Seq != 2 {
		t.Errorf("seqs %d, %d; want 1, 2", a.Seq, b.Seq)
	}
	if !a.Time.Equal(now) || !b.Time.Equal(given) {
		t.Errorf("times %v, %v; want %v, %v", a.Time, b.Time, now, given)
	}
	got, _ := l.List(0, 0)
	if len(got) != 2 || got[1].Message != "sensor 2 went critical" || got[1].Data["reading"] != "2" {
		t.Errorf("List = %+v", got)
	}
}

func TestListAfterAndLimit(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir()})
	appendN(t, l, 0, 10)
	for _, tc := range []struct {
		after       uint64
		limit       int
		first, last uint64
	}{
		{0, 0, 1, 10},
		{0, 3, 1, 3},
		{4, 0, 5, 10},
		{4, 2, 5, 6},
		{9, 5, 10, 10},
	} {
		got, err := l.List(tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		checkSeqs(t, got, tc.first, tc.last)
	}
	if got, _ := l.List(10, 0); len(got) != 0 {
		t.Errorf("List(10) = %d events, want 0", len(got))
	}
}

func TestRestartContinuesSeq(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 5)
	l.Close()

	l2 := mustOpen(t, Options{Dir: dir})
	got, _ := l2.List(0, 0)
	checkSeqs(t, got, 1, 5)
	if got[3].Message != "sensor 3 went critical" {
		t.Errorf("event 4 message %q", got[3].Message)
	}
	ev, err := l2.Append(sample(5))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 6 {
		t.Errorf("after restart seq = %d, want 6", ev.Seq)
	}
}

func TestTornTail(t *testing.T) {
	rec, err := EncodeRecord(nil, events.Event{Seq: 4, Kind: events.KindBMC, Message: "m"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"half header", rec[:3]},
		{"header only", rec[:headerLen]},
		{"half record", rec[:len(rec)/2]},
		{"record minus one byte", rec[:len(rec)-1]},
		{"garbage", []byte("\xff\xff\xff\x7fgarbage garbage garbage")},
		{"bad crc", append(append([]byte(nil), rec[:len(rec)-1]...), rec[len(rec)-1]^0xff)},
		{"zeros", make([]byte, 64)},
		{"stale seq", mustRecord(t, events.Event{Seq: 2, Kind: events.KindBMC})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 0, 3)
			l.Close()
			path := filepath.Join(dir, segName(1))
			before, _ := os.Stat(path)
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.tail)
			f.Close()

			l2 := mustOpen(t, Options{Dir: dir})
			got, _ := l2.List(0, 0)
			checkSeqs(t, got, 1, 3)
			after, _ := os.Stat(path)
			if after.Size() != before.Size() {
				t.Errorf("file is %d bytes after open, want the torn tail cut to %d", after.Size(), before.Size())
			}
			ev, err := l2.Append(sample(9))
			if err != nil || ev.Seq != 4 {
				t.Fatalf("Append after torn tail: seq %d, %v; want 4", ev.Seq, err)
			}
			l2.Close()
			l3 := mustOpen(t, Options{Dir: dir})
			got, _ = l3.List(0, 0)
			checkSeqs(t, got, 1, 4)
		})
	}
}

func mustRecord(t *testing.T, ev events.Event) []byte {
	t.Helper()
	b, err := EncodeRecord(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBoundedByEntries(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MaxEntries: 20, Segments: 4}
	l := mustOpen(t, o)
	for i := 0; i < 103; i++ {
		appendN(t, l, i, 1)
		if n := l.Len(); n > 20 {
			t.Fatalf("after %d appends the log retains %d events, bound is 20", i+1, n)
		}
	}
	got, _ := l.List(0, 0)
	// At least (Segments-1)/Segments of the bound is kept, newest last.
	if len(got) < 15 || got[len(got)-1].Seq != 103 {
		t.Fatalf("retained %d events ending at %d", len(got), got[len(got)-1].Seq)
	}
	checkSeqs(t, got, got[0].Seq, 103)
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.log"))
	if len(files) > 4 {
		t.Errorf("%d segment files, want at most 4", len(files))
	}
	l.Close()
	l2 := mustOpen(t, o)
	got2, _ := l2.List(0, 0)
	checkSeqs(t, got2, got[0].Seq, 103)
}

func TestBoundedByBytes(t *testing.T) {
	dir := t.TempDir()
	rec := len(mustRecord(t, sample(0)))
	o := Options{Dir: dir, MaxBytes: int64(rec * 8), Segments: 4}
	l := mustOpen(t, o)
	appendN(t, l, 0, 50)
	var total int64
	files, _ := filepath.Glob(filepath.Join(dir, "events-*.log"))
	for _, f := range files {
		st, _ := os.Stat(f)
		total += st.Size()
	}
	// Records differ by a few bytes (numbers in the message): allow that.
	if total > o.MaxBytes+int64(len(files)*8) {
		t.Errorf("log uses %d bytes on disk, bound is %d", total, o.MaxBytes)
	}
	got, _ := l.List(0, 0)
	if len(got) < 4 || got[len(got)-1].Seq != 50 {
		t.Errorf("retained %d events", len(got))
	}
}

func TestShrinkBoundOnOpen(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(Options{Dir: dir, MaxEntries: 40, Segments: 4})
	appendN(t, l, 0, 40)
	l.Close()
	l2 := mustOpen(t, Options{Dir: dir, MaxEntries: 20, Segments: 2})
	got, _ := l2.List(0, 0)
	if len(got) > 20 || got[len(got)-1].Seq != 40 {
		t.Fatalf("after shrinking: %d events ending at %d", len(got), got[len(got)-1].Seq)
	}
}

func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, Options{Dir: dir, MaxEntries: 1000})
	const workers, each = 8, 25
	var wg sync.WaitGroup
	seqs := make(chan uint64, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ev, err := l.Append(sample(i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- ev.Seq
			}
		}()
	}
	wg.Wait()
	close(seqs)
	var all []uint64
	for s := range seqs {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("seqs not unique and dense: position %d has %d", i, s)
		}
	}
	l.Close()
	l2 := mustOpen(t, Options{Dir: dir, MaxEntries: 1000})
	got, _ := l2.List(0, 0)
	checkSeqs(t, got, 1, workers*each)
}

func TestOversizedEventRejected(t *testing.T) {
	l := mustOpen(t, Options{Dir: t.TempDir()})
	ev := sample(0)
	ev.Message = string(make([]byte, MaxRecordBytes))
	if _, err := l.Append(ev); err == nil {
		t.Fatal("Append of an oversized event succeeded")
	}
	if ev, err := l.Append(sample(1)); err != nil || ev.Seq != 1 {
		t.Fatalf("next Append: seq %d, %v; want 1", ev.Seq, err)
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good := mustRecord(t, events.Event{Seq: 7, Kind: events.KindService, Message: "hi"})
	ev, n, err := DecodeRecord(append(append([]byte(nil), good...), 0xAA))
	if err != nil || n != len(good) || ev.Seq != 7 || ev.Message != "hi" {
		t.Fatalf("DecodeRecord(good) = %+v, %d, %v", ev, n, err)
	}
	noSeq := mustRecord(t, events.Event{Kind: events.KindService})
	notJSON := []byte("\x03\x00\x00\x00....abc")
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"short payload", good[:len(good)-2], ErrShort},
		{"zero length", make([]byte, 16), ErrCorrupt},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, ErrCorrupt},
		{"seq zero", noSeq, ErrCorrupt},
		{"not json", notJSON, ErrCorrupt},
	} {
		if _, _, err := DecodeRecord(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	good, _ := EncodeRecord(nil, sample(1))
	withSeq := sample(2)
	withSeq.Seq = 42
	good2, _ := EncodeRecord(nil, withSeq)
	f.Add(good)
	f.Add(good2)
	f.Add(good2[:10])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, n, err := DecodeRecord(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error with n = %d", n)
			}
			return
		}
		if n < headerLen || n > len(b) || ev.Seq == 0 {
			t.Fatalf("n = %d of %d, seq %d", n, len(b), ev.Seq)
		}
		// A decoded event re-encodes to a record that decodes the same.
		re, err := EncodeRecord(nil, ev)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		ev2, n2, err := DecodeRecord(re)
		if err != nil || n2 != len(re) || ev2.Seq != ev.Seq || ev2.Message != ev.Message {
			t.Fatalf("round trip: %+v %d %v", ev2, n2, err)
		}
	})
}
