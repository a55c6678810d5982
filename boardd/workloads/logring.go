package workloads

import (
	"bytes"
	"sync"
	"time"
)

// LogLine is one line of a workload's output.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"` // stdout | stderr | podos
	Text   string    `json:"text"`
}

// maxLineLen splits longer lines so one runaway line cannot take the ring.
const maxLineLen = 16 << 10

// LogRing keeps the last output of a workload within a byte budget and
// fans new lines out to followers. A follower that falls behind loses
// lines rather than slowing the workload. Hand-written because the ring
// needs both a byte bound and live followers, which container/ring lacks.
type LogRing struct {
	mu    sync.Mutex
	max   int // bytes of text kept
	size  int
	lines []LogLine // oldest first; trimmed from the front
	subs  map[chan LogLine]struct{}
	now   func() time.Time
}

// NewLogRing returns a ring keeping about maxBytes of text.
func NewLogRing(maxBytes int) *LogRing {
	return &LogRing{max: maxBytes, subs: map[chan LogLine]struct{}{}, now: time.Now}
}

// Add appends one line.
func (r *LogRing) Add(stream, text string) {
	l := LogLine{Time: r.now().UTC(), Stream: stream, Text: text}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
	r.size += len(text) + 1
	drop := 0
	for r.size > r.max && drop < len(r.lines)-1 {
		r.size -= len(r.lines[drop].Text) + 1
		drop++
	}
	if drop > 0 {
		// Compact rather than reslice forever so the backing array is reused.
		r.lines = append(r.lines[:0], r.lines[drop:]...)
	}
	for c := range r.subs {
		select {
		case c <- l:
		default: // a slow follower loses lines
		}
	}
}

// Tail returns the last n lines (all when n <= 0).
func (r *LogRing) Tail(n int) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 || n > len(r.lines) {
		n = len(r.lines)
	}
	return append([]LogLine(nil), r.lines[len(r.lines)-n:]...)
}

// Follow returns the last n lines and a channel of the lines after them,
// atomically; cancel stops the stream and closes the channel.
func (r *LogRing) Follow(n int) (tail []LogLine, c <-chan LogLine, cancel func()) {
	ch := make(chan LogLine, 1024)
	r.mu.Lock()
	if n <= 0 || n > len(r.lines) {
		n = len(r.lines)
	}
	tail = append([]LogLine(nil), r.lines[len(r.lines)-n:]...)
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	var once sync.Once
	return tail, ch, func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.subs, ch)
			close(ch)
			r.mu.Unlock()
		})
	}
}

// Writer returns an io.Writer that splits what it is given into lines of
// stream. Each call to Writer returns an independent line buffer.
func (r *LogRing) Writer(stream string) *LineWriter {
	return &LineWriter{ring: r, stream: stream}
}

// LineWriter turns a byte stream into ring lines.
type LineWriter struct {
	mu     sync.Mutex
	ring   *LogRing
	stream string
	buf    []byte
}

// Write implements io.Writer; it never fails.
func (w *LineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLineLen {
				w.ring.Add(w.stream, string(w.buf[:maxLineLen]))
				w.buf = append(w.buf[:0], w.buf[maxLineLen:]...)
			}
			break
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		for len(w.buf) > maxLineLen {
			w.ring.Add(w.stream, string(w.buf[:maxLineLen]))
			w.buf = w.buf[maxLineLen:]
		}
		w.ring.Add(w.stream, string(bytes.TrimSuffix(w.buf, []byte("\r"))))
		w.buf = w.buf[:0]
	}
	return n, nil
}

// Flush emits a pending partial line.
func (w *LineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.ring.Add(w.stream, string(w.buf))
		w.buf = w.buf[:0]
	}
}
