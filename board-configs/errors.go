package boardconfig

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem in a board config: where it is and why.
type FieldError struct {
	File string // file name as given to Parse or Load; may be empty
	Line int    // 1-based; 0 when unknown (a config built in Go)
	Path string // field path, e.g. "sensors[3].thresholds.upper_critical"
	Msg  string
}

// Error renders "file:line: path: reason", leaving out the parts that are
// unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config, one per line in Error.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted orders the errors by line, then path, keeping the order they were
// found in otherwise.
func (es Errors) sorted() Errors {
	slices.SortStableFunc(es, func(a, b *FieldError) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	return es
}

// errorList collects errors with a way to find a path's line.
type errorList struct {
	file  string
	lines map[string]int // field path -> line; nil for configs built in Go
	errs  Errors
}

// addf records a problem at path.
func (l *errorList) addf(path, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{File: l.file, Line: l.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// addAt records a problem at an explicit line.
func (l *errorList) addAt(line int, path, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{File: l.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of path or, for a field that is absent, of its
// nearest ancestor that is present.
func (l *errorList) line(path string) int {
	for l.lines != nil {
		if n, ok := l.lines[path]; ok {
			return n
		}
		if path == "" {
			return 0
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
	}
	return 0
}

// maxErrors is how many problems one Parse reports; the rest are counted.
const maxErrors = 50

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	es := l.errs.sorted()
	if len(es) > maxErrors {
		rest := len(es) - maxErrors
		es = append(es[:maxErrors:maxErrors], &FieldError{File: l.file, Msg: fmt.Sprintf("... and %d more problems", rest)})
	}
	return es
}
