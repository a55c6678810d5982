package fabric

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Uevent is one kernel object event ("add@/devices/pci0000:00/...").
type Uevent struct {
	Action    string            `json:"action"`  // add, remove, change, bind, unbind, online...
	DevPath   string            `json:"devpath"` // below /sys
	Subsystem string            `json:"subsystem"`
	Env       map[string]string `json:"env,omitempty"`
}

// ParseUevent parses a kernel uevent datagram: "<action>@<devpath>" then
// NUL-separated KEY=VALUE pairs. Messages relayed by udev (which start
// with "libudev") are refused: fabric listens to the kernel only.
func ParseUevent(b []byte) (Uevent, error) {
	parts := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	if len(parts) == 0 || len(parts[0]) == 0 {
		return Uevent{}, errors.New("uevent: empty message")
	}
	head := string(parts[0])
	if strings.HasPrefix(head, "libudev") {
		return Uevent{}, errors.New("uevent: udev message, not the kernel's")
	}
	action, path, ok := strings.Cut(head, "@")
	if !ok || action == "" || path == "" {
		return Uevent{}, fmt.Errorf("uevent: header %q: want <action>@<devpath>", head)
	}
	ev := Uevent{Action: action, DevPath: path, Env: map[string]string{}}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(string(p), "=")
		if !ok || k == "" {
			return Uevent{}, fmt.Errorf("uevent: field %q: want KEY=VALUE", p)
		}
		ev.Env[k] = v
	}
	if a := ev.Env["ACTION"]; a != "" {
		ev.Action = a
	}
	if p := ev.Env["DEVPATH"]; p != "" {
		ev.DevPath = p
	}
	ev.Subsystem = ev.Env["SUBSYSTEM"]
	return ev, nil
}

// UeventSource delivers kernel uevents.
type UeventSource interface {
	// Read blocks until the next event, ctx is done, or the source is closed.
	Read(ctx context.Context) (Uevent, error)
	Close() error
}

// NetlinkUevents reads uevents from a NETLINK_KOBJECT_UEVENT socket bound
// to the kernel's multicast group. Hand-written on x/sys/unix: it is a
// socket, a bind and a read; vishvananda/netlink has no uevent reader.
type NetlinkUevents struct {
	f *os.File
}

// OpenUevents opens the kernel uevent socket.
func OpenUevents() (*NetlinkUevents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, fmt.Errorf("uevent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("uevent bind: %w", err)
	}
	// Bursts (a switch coming and going) can queue many events.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	// A non-blocking fd in an os.File goes through Go's poller, so Close
	// unblocks a pending Read.
	return &NetlinkUevents{f: os.NewFile(uintptr(fd), "uevent")}, nil
}

// Read returns the next parseable kernel uevent.
func (n *NetlinkUevents) Read(ctx context.Context) (Uevent, error) {
	stop := context.AfterFunc(ctx, func() { _ = n.f.Close() })
	defer stop()
	buf := make([]byte, 16<<10)
	for {
		k, err := n.f.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return Uevent{}, ctx.Err()
			}
			if errors.Is(err, unix.ENOBUFS) {
				// The kernel dropped events: report it as a change so the
				// watcher rescans.
				return Uevent{Action: "overflow", Subsystem: "pci"}, nil
			}
			return Uevent{}, fmt.Errorf("uevent read: %w", err)
		}
		ev, err := ParseUevent(buf[:k])
		if err != nil {
			continue
		}
		return ev, nil
	}
}

// Close closes the socket.
func (n *NetlinkUevents) Close() error { return n.f.Close() }
