// Package eventlog is boardd's durable event log: every event is framed
// (length + CRC-32C), appended and fsynced to a segment file in the state
// dir before anything acts on it. The log is bounded: it keeps at most
// MaxEntries events and about MaxBytes bytes in a few segment files and
// drops the oldest segment when a new one starts. A crash mid-write
// leaves a torn tail, which Open detects and truncates without losing
// any earlier record; sequence numbers continue across restarts.
//
// The retained events are also kept in memory (events are rare and the
// log is bounded), so List never touches the disk.
package eventlog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"podos.dev/podos/boardd/events"
)

// Defaults for Options.
const (
	DefaultMaxEntries = 4096
	DefaultMaxBytes   = 4 << 20
	DefaultSegments   = 4
)

// Options configure a Log.
type Options struct {
	// Dir holds the segment files (created if missing).
	Dir string
	// MaxEntries bounds the number of retained events (default 4096).
	MaxEntries int
	// MaxBytes bounds the bytes on disk (default 4 MiB). A single event
	// larger than MaxBytes/Segments still gets a segment of its own.
	MaxBytes int64
	// Segments is how many files the log is split into (default 4, at
	// least 2): when
	// a new segment starts, the oldest is deleted, so the log retains
	// between (Segments-1)/Segments and all of the bound.
	Segments int
	// Now stamps events that come without a time (default time.Now).
	Now func() time.Time
	// Logger reports truncated tails and dropped segments.
	Logger *slog.Logger
}

type segment struct {
	path    string
	first   uint64 // first sequence number this segment may hold
	entries int
	bytes   int64
}

// Log is a durable, bounded, append-only event log. It implements
// events.Log (and so events.Reader). Safe for concurrent use.
type Log struct {
	opts    Options
	capEnt  int
	capByte int64

	mu     sync.Mutex
	segs   []segment // oldest first; the last one is active
	f      *os.File  // the active segment, open for append
	evs    []events.Event
	last   uint64
	buf    []byte
	closed bool
}

var _ events.Log = (*Log)(nil)

const segPrefix, segSuffix = "events-", ".log"

func segName(first uint64) string { return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix) }

// Open opens (or creates) the log in opts.Dir, checking every record and
// truncating a torn or corrupt tail.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("eventlog: no directory")
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Segments <= 1 {
		opts.Segments = DefaultSegments
	}
	if opts.Segments > opts.MaxEntries {
		opts.Segments = opts.MaxEntries
	}
	if opts.Segments < 1 {
		opts.Segments = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	l := &Log{
		opts:    opts,
		capEnt:  opts.MaxEntries / opts.Segments,
		capByte: opts.MaxBytes / int64(opts.Segments),
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) load() error {
	ents, err := os.ReadDir(l.opts.Dir)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		first, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		l.segs = append(l.segs, segment{path: filepath.Join(l.opts.Dir, name), first: first})
	}
	sort.Slice(l.segs, func(i, j int) bool { return l.segs[i].first < l.segs[j].first })

	for i := range l.segs {
		if err := l.loadSegment(&l.segs[i]); err != nil {
			return err
		}
	}
	if n := len(l.segs); n > 0 && l.last == 0 && l.segs[n-1].first > 0 {
		// Every record is gone (truncated): keep numbering after them.
		l.last = l.segs[n-1].first - 1
	}
	if err := l.trim(); err != nil {
		return err
	}
	if n := len(l.segs); n > 0 {
		f, err := os.OpenFile(l.segs[n-1].path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("eventlog: %w", err)
		}
		l.f = f
	}
	return nil
}

// loadSegment reads every valid record of s and truncates the file after
// the last one.
func (l *Log) loadSegment(s *segment) error {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	off := 0
	for off < len(b) {
		ev, n, err := DecodeRecord(b[off:])
		if err == nil && ev.Seq <= l.last {
			err = fmt.Errorf("%w: sequence %d after %d", ErrCorrupt, ev.Seq, l.last)
		}
		if err == nil && ev.Seq < s.first {
			err = fmt.Errorf("%w: sequence %d before segment start %d", ErrCorrupt, ev.Seq, s.first)
		}
		if err != nil {
			l.opts.Logger.Warn("event log: truncating torn or corrupt tail",
				"file", s.path, "offset", off, "dropped_bytes", len(b)-off, "err", err)
			if err := os.Truncate(s.path, int64(off)); err != nil {
				return fmt.Errorf("eventlog: truncate torn tail: %w", err)
			}
			break
		}
		l.evs = append(l.evs, ev)
		l.last = ev.Seq
		s.entries++
		off += n
	}
	s.bytes = int64(off)
	return nil
}

// trim deletes the oldest segments while there are more than allowed.
// Called with l.mu held (or before the log is shared).
func (l *Log) trim() error {
	for len(l.segs) > l.opts.Segments {
		old := l.segs[0]
		if err := os.Remove(old.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("eventlog: drop oldest segment: %w", err)
		}
		l.segs = l.segs[1:]
		// Forget its events, copying so the dropped ones can be freed.
		l.evs = append(l.evs[:0:0], l.evs[old.entries:]...)
		l.opts.Logger.Debug("event log: dropped oldest segment", "file", old.path, "events", old.entries)
	}
	return syncDir(l.opts.Dir)
}

// Append assigns ev the next sequence number (and the current time if it
// has none), writes it durably and returns it.
func (l *Log) Append(ev events.Event) (events.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return events.Event{}, errors.New("eventlog: closed")
	}
	ev.Seq = l.last + 1
	if ev.Time.IsZero() {
		ev.Time = l.opts.Now()
	}
	ev.Time = ev.Time.UTC()
	rec, err := EncodeRecord(l.buf[:0], ev)
	if err != nil {
		return events.Event{}, err
	}
	l.buf = rec[:0]
	if err := l.rotateFor(int64(len(rec)), ev.Seq); err != nil {
		return events.Event{}, err
	}
	act := &l.segs[len(l.segs)-1]
	if _, err := l.f.Write(rec); err != nil {
		// Cut a partial write so the file stays a sequence of records.
		_ = l.f.Truncate(act.bytes)
		return events.Event{}, fmt.Errorf("eventlog: append: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		_ = l.f.Truncate(act.bytes)
		return events.Event{}, fmt.Errorf("eventlog: fsync: %w", err)
	}
	act.entries++
	act.bytes += int64(len(rec))
	l.last = ev.Seq
	l.evs = append(l.evs, ev)
	return ev, nil
}

// rotateFor starts a new segment when the active one cannot take a
// record of n bytes.
func (l *Log) rotateFor(n int64, seq uint64) error {
	if len(l.segs) > 0 {
		act := l.segs[len(l.segs)-1]
		if act.entries == 0 || (act.entries < l.capEnt && act.bytes+n <= l.capByte) {
			return nil
		}
	}
	path := filepath.Join(l.opts.Dir, segName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("eventlog: new segment: %w", err)
	}
	if l.f != nil {
		_ = l.f.Close()
	}
	l.f = f
	l.segs = append(l.segs, segment{path: path, first: seq})
	return l.trim()
}

// List returns up to limit events with Seq > after, oldest first; limit
// <= 0 means all of them. The events share their Data maps and
// MessageArgs with the log: treat them as read-only.
func (l *Log) List(after uint64, limit int) ([]events.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.evs), func(i int) bool { return l.evs[i].Seq > after })
	n := len(l.evs) - i
	if limit > 0 && n > limit {
		n = limit
	}
	out := make([]events.Event, n)
	copy(out, l.evs[i:i+n])
	return out, nil
}

// LastSeq returns the sequence number of the newest event (0 if none ever).
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Len returns how many events the log retains.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// Close closes the active segment.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("eventlog: fsync dir: %w", err)
	}
	return nil
}
