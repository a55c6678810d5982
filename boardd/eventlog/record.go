package eventlog

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"

	"podos.dev/podos/boardd/events"
)

// On-disk framing of one record, hand-written because no library in
// go.mod offers a small crash-safe append-only record file:
//
//	length  uint32 little-endian: payload length in bytes
//	crc     uint32 little-endian: CRC-32C (Castagnoli) of the payload
//	payload length bytes: the event as JSON
//
// A record whose header is incomplete, whose length is zero or above
// MaxRecordBytes, whose payload is short or whose CRC does not match is
// torn or corrupt: Open truncates the file there.
const headerLen = 8

// MaxRecordBytes bounds one encoded event.
const MaxRecordBytes = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Decoding errors.
var (
	ErrShort   = errors.New("eventlog: short record")
	ErrCorrupt = errors.New("eventlog: corrupt record")
)

// EncodeRecord appends the framed record of ev to dst.
func EncodeRecord(dst []byte, ev events.Event) ([]byte, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return dst, fmt.Errorf("eventlog: encode event: %w", err)
	}
	if len(payload) > MaxRecordBytes {
		return dst, fmt.Errorf("eventlog: event of %d bytes exceeds %d", len(payload), MaxRecordBytes)
	}
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(payload, castagnoli))
	dst = append(dst, h[:]...)
	return append(dst, payload...), nil
}

// DecodeRecord decodes the first record in b and returns the event and
// the number of bytes it took. It returns ErrShort when b ends inside the
// record (a torn tail) and ErrCorrupt when the record is invalid.
func DecodeRecord(b []byte) (events.Event, int, error) {
	if len(b) < headerLen {
		return events.Event{}, 0, ErrShort
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n == 0 || n > MaxRecordBytes {
		return events.Event{}, 0, fmt.Errorf("%w: length %d", ErrCorrupt, n)
	}
	if uint64(len(b)-headerLen) < uint64(n) {
		return events.Event{}, 0, ErrShort
	}
	payload := b[headerLen : headerLen+int(n)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return events.Event{}, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	var ev events.Event
	if err := json.Unmarshal(payload, &ev); err != nil {
		return events.Event{}, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if ev.Seq == 0 {
		return events.Event{}, 0, fmt.Errorf("%w: sequence number 0", ErrCorrupt)
	}
	return ev, headerLen + int(n), nil
}
