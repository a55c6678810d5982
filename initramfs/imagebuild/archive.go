package imagebuild

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"

	"github.com/u-root/mkuimage/cpio"
	"github.com/u-root/uio/uio"
)

// Tree is the content of an image, keyed by archive path (no leading
// slash). Records added later replace earlier ones with the same path.
type Tree struct {
	recs map[string]cpio.Record
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{recs: map[string]cpio.Record{}} }

// Add adds a record (replacing one at the same path) and its missing
// parent directories.
func (t *Tree) Add(r cpio.Record) {
	r.Name = cpio.Normalize(r.Name)
	if r.Name == "." || r.Name == "" {
		return
	}
	for dir := path.Dir(r.Name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := t.recs[dir]; !ok {
			t.recs[dir] = cpio.Directory(dir, 0o755)
		}
	}
	t.recs[r.Name] = r
}

// File adds a regular file.
func (t *Tree) File(name string, data []byte, perm uint64) {
	t.Add(cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm}))
}

// AddAll adds every record of a reader.
func (t *Tree) AddAll(rr cpio.RecordReader) error {
	return cpio.ForEachRecord(rr, func(r cpio.Record) error {
		if r.Name == "TRAILER!!!" {
			return nil
		}
		// Read content now: readers may not outlive this call.
		if r.Mode&cpio.S_IFMT == cpio.S_IFREG || r.Mode&cpio.S_IFMT == cpio.S_IFLNK {
			b, err := io.ReadAll(uio.Reader(r))
			if err != nil {
				return fmt.Errorf("read %s: %w", r.Name, err)
			}
			r = cpio.StaticRecord(b, r.Info)
		}
		t.Add(r)
		return nil
	})
}

// Names returns the sorted archive paths.
func (t *Tree) Names() []string {
	names := make([]string, 0, len(t.recs))
	for n := range t.recs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the record at name.
func (t *Tree) Get(name string) (cpio.Record, bool) {
	r, ok := t.recs[cpio.Normalize(name)]
	return r, ok
}

// WriteCPIO writes the tree as a newc archive: entries sorted by path
// (parents before children), owned by 0:0, every mtime set to epoch, no
// inode or device numbers: the same tree always gives the same bytes.
func (t *Tree) WriteCPIO(w io.Writer, epoch int64) error {
	cw := cpio.Newc.Writer(w)
	for _, n := range t.Names() {
		r := cpio.MakeReproducible(t.recs[n])
		r.MTime = uint64(epoch)
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		} else {
			r.NLink = 1
		}
		if err := cw.WriteRecord(r); err != nil {
			return fmt.Errorf("write %s: %w", n, err)
		}
	}
	return cpio.WriteTrailer(cw)
}

// Sums returns the sha256 of every regular file and symlink target, by
// path.
func (t *Tree) Sums() (map[string]string, error) {
	out := map[string]string{}
	for n, r := range t.recs {
		switch r.Mode & cpio.S_IFMT {
		case cpio.S_IFREG, cpio.S_IFLNK:
			h := sha256.New()
			if _, err := io.Copy(h, uio.Reader(r)); err != nil {
				return nil, fmt.Errorf("hash %s: %w", n, err)
			}
			out[n] = hex.EncodeToString(h.Sum(nil))
		}
	}
	return out, nil
}

// ReadCPIO parses a newc archive (possibly several concatenated, as the
// kernel accepts) into a tree.
func ReadCPIO(data []byte) (*Tree, error) {
	// Check every header's sizes against the data first: the newc reader
	// allocates a header's name size before reading it.
	if err := checkNewc(data); err != nil {
		return nil, err
	}
	t := NewTree()
	rest := data
	for len(bytes.TrimLeft(rest, "\x00")) > 0 {
		rest = bytes.TrimLeft(rest, "\x00")
		br := bytes.NewReader(rest)
		rr := cpio.Newc.Reader(br)
		// The reader ends (io.EOF) at the trailer record without returning
		// it: the trailer starts where the last record's content ends.
		last := 0
		end := 0
		for {
			r, err := rr.ReadRecord()
			if err == io.EOF {
				const trailer = "TRAILER!!!\x00"
				if last+110+len(trailer) > len(rest) || string(rest[last:last+6]) != "070701" ||
					string(rest[last+110:last+110+len(trailer)]) != trailer {
					return nil, fmt.Errorf("cpio archive without trailer")
				}
				end = last + align4(110+len(trailer))
				break
			}
			if err != nil {
				return nil, fmt.Errorf("read cpio: %w", err)
			}
			last = align4(int(r.FilePos) + int(r.FileSize))
			if r.Mode&cpio.S_IFMT == cpio.S_IFREG || r.Mode&cpio.S_IFMT == cpio.S_IFLNK {
				b, err := io.ReadAll(uio.Reader(r))
				if err != nil {
					return nil, fmt.Errorf("read %s: %w", r.Name, err)
				}
				r = cpio.StaticRecord(b, r.Info)
			}
			t.Add(r)
		}
		if end <= 0 || end > len(rest) {
			break
		}
		rest = rest[end:]
	}
	return t, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// checkNewc walks newc headers and checks that names and contents fit in
// data.
func checkNewc(data []byte) error {
	pos := 0
	for {
		for pos < len(data) && data[pos] == 0 {
			pos++
		}
		if pos >= len(data) {
			return nil
		}
		if len(data)-pos < 110 || string(data[pos:pos+6]) != "070701" {
			return fmt.Errorf("cpio: bad header at offset %d", pos)
		}
		field := func(i int) (int, error) {
			v, err := strconv.ParseUint(string(data[pos+6+8*i:pos+14+8*i]), 16, 32)
			if err != nil {
				return 0, fmt.Errorf("cpio: bad header field at offset %d: %w", pos, err)
			}
			return int(v), nil
		}
		size, err := field(6)
		if err != nil {
			return err
		}
		nameLen, err := field(11)
		if err != nil {
			return err
		}
		if nameLen == 0 || nameLen > len(data)-pos-110 {
			return fmt.Errorf("cpio: name size %d at offset %d runs past the end", nameLen, pos)
		}
		name := string(data[pos+110 : pos+110+nameLen-1])
		pos = align4(pos + 110 + nameLen)
		if size > len(data)-pos {
			return fmt.Errorf("cpio: %q: size %d runs past the end", name, size)
		}
		pos = align4(pos + size)
		if pos > len(data) {
			pos = len(data)
		}
	}
}
