package ipmi

// The in-band exchange over /dev/ipmiN is written by hand on go-ipmi's
// exported Linux structures (open.IPMI_REQ, open.IPMI_RECV, the ioctl
// numbers) instead of going through go-ipmi's "open" client, for two
// reasons:
//   - go-ipmi's Connect registers the handle as an event receiver, and its
//     receive treats the first message it reads as the answer: an event,
//     or the late answer to a request that already timed out, then fails
//     this request and leaves this answer queued for the next one, so every
//     later request reads its predecessor's answer and fails too. ipmi_sim
//     drops one KCS reply after each event it generates, which triggers
//     exactly that.
//   - we need the completion code as data and the retry policy of the
//     Client (short timeout, backoff), not the driver's 15 s default.
// Here events are never requested and stale messages are discarded until
// the one with our message ID arrives or the deadline passes.
//
// A request that timed out is usually still queued in the kernel (its KCS
// state machine waits 5 s before retrying a transfer the BMC left
// unanswered), and its answer comes later. So a retry of the same request
// (same bytes) also accepts the answer to any of its earlier attempts:
// whichever comes first answers the question.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/bougou/go-ipmi/pkg/open"
	"github.com/bougou/go-ipmi/pkg/types"
)

// OpenKCS opens the in-band system interface through the Linux IPMI
// driver (ipmi_devintf), e.g. "/dev/ipmi0".
func OpenKCS(ctx context.Context, device string, opts Options) (*Client, error) {
	if _, err := KCSDeviceNumber(device); err != nil {
		return nil, err
	}
	k := &kcsConn{path: device}
	if err := k.reconnect(ctx); err != nil {
		return nil, err
	}
	return newClient(k, opts), nil
}

type kcsConn struct {
	path  string
	f     *os.File
	msgID atomic.Int64
	// pendKey identifies the request whose earlier attempts (pend) got no
	// answer yet.
	pendKey string
	pend    []int64
}

func (k *kcsConn) transport() string { return "kcs" }

func (k *kcsConn) reconnect(ctx context.Context) error {
	if k.f != nil {
		_ = k.f.Close()
		k.f = nil
	}
	f, err := os.OpenFile(k.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("ipmi kcs: %w", err)
	}
	k.f = f
	return nil
}

func (k *kcsConn) close() error {
	if k.f == nil {
		return nil
	}
	err := k.f.Close()
	k.f = nil
	return err
}

func (k *kcsConn) exchange(ctx context.Context, req types.Request, resp types.Response) error {
	if k.f == nil {
		return errors.New("ipmi kcs: device not open")
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Second)
	}
	lun := uint8(0)
	if cc := lunFromContext(ctx); cc != nil {
		lun = *cc
	}
	data := req.Pack()
	var dataPtr *byte
	if len(data) > 0 {
		dataPtr = &data[0]
	}
	addr := &open.IPMI_SYSTEM_INTERFACE_ADDR{
		AddrType: open.IPMI_SYSTEM_INTERFACE_ADDR_TYPE,
		Channel:  open.IPMI_BMC_CHANNEL,
		LUN:      lun,
	}
	id := k.msgID.Add(1)
	key := fmt.Sprintf("%x/%x/%d/%x", uint8(req.Command().NetFn), req.Command().ID, lun, data)
	if key != k.pendKey {
		k.pendKey, k.pend = key, nil
	}
	accept := append(append([]int64(nil), k.pend...), id)
	kreq := &open.IPMI_REQ{
		Addr:    unsafe.Pointer(addr),
		AddrLen: int(unsafe.Sizeof(*addr)),
		MsgID:   id,
		Msg: open.IPMI_MSG{
			NetFn:   uint8(req.Command().NetFn),
			Cmd:     req.Command().ID,
			Data:    dataPtr,
			DataLen: uint16(len(data)),
		},
	}
	fd := k.f.Fd()
	for {
		_, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, open.IPMICTL_SEND_COMMAND, uintptr(unsafe.Pointer(kreq)))
		runtime.KeepAlive(kreq)
		runtime.KeepAlive(addr)
		runtime.KeepAlive(data)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("ipmi kcs: send: %w", e)
		}
		break
	}
	rc, err := k.f.SyscallConn()
	if err != nil {
		return err
	}
	if err := k.f.SetReadDeadline(deadline); err != nil {
		return err
	}
	buf := make([]byte, open.IPMI_BUF_SIZE)
	raddr := &open.IPMI_ADDR{}
	var got []byte
	var rerr error
	readErr := rc.Read(func(fd uintptr) bool {
		for {
			recv := &open.IPMI_RECV{
				Addr:    unsafe.Pointer(raddr),
				AddrLen: int(unsafe.Sizeof(*raddr)),
				Msg:     open.IPMI_MSG{Data: &buf[0], DataLen: uint16(len(buf))},
			}
			_, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, open.IPMICTL_RECEIVE_MSG_TRUNC, uintptr(unsafe.Pointer(recv)))
			runtime.KeepAlive(recv)
			switch {
			case e == syscall.EAGAIN:
				return false // wait until readable
			case e == syscall.EINTR:
				continue
			case e != 0 && e != syscall.EMSGSIZE:
				rerr = fmt.Errorf("ipmi kcs: receive: %w", e)
				return true
			}
			if !slices.Contains(accept, recv.MsgID) || recv.RecvType != open.IPMI_RESPONSE_RECV_TYPE {
				continue // a late answer to an abandoned request, or an event: drop it
			}
			n := min(int(recv.Msg.DataLen), len(buf))
			got = append([]byte(nil), buf[:n]...)
			return true
		}
	})
	if readErr != nil {
		if len(k.pend) < 8 {
			k.pend = append(k.pend, id)
		}
		return fmt.Errorf("ipmi kcs: %s: %w", req.Command().Name, readErr)
	}
	k.pendKey, k.pend = "", nil
	if rerr != nil {
		return rerr
	}
	if len(got) < 1 {
		return fmt.Errorf("ipmi kcs: %s: empty response", req.Command().Name)
	}
	if got[0] != 0 {
		return types.NewResponseError(types.CompletionCode(got[0]), fmt.Sprintf("completion code 0x%02x", got[0]))
	}
	if err := resp.Unpack(got[1:]); err != nil {
		return fmt.Errorf("ipmi kcs: %s: unpack: %w", req.Command().Name, err)
	}
	return nil
}
