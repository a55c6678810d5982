// Package watchdog pets the board's hardware watchdog (/dev/watchdog0)
// while boardd's loops report healthy, and disarms it (magic close) only
// on a clean shutdown. If boardd hangs, is stopped, or its loops stall,
// petting stops and the hardware resets the board.
//
// It follows u-root's cmds/core/watchdogd and uses u-root's pkg/watchdog
// for the device (ioctl) layer. Early init never touches the watchdog:
// boardd alone owns it.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	uwd "github.com/u-root/u-root/pkg/watchdog"
	"golang.org/x/sys/unix"
)

// Device is an open watchdog device.
type Device interface {
	SetTimeout(time.Duration) error
	KeepAlive() error
	// MagicClose disarms the watchdog and closes the device.
	MagicClose() error
	// Close closes the device and leaves the watchdog armed.
	Close() error
}

// Opener opens a watchdog device by path.
type Opener func(path string) (Device, error)

// OpenDevice opens a Linux watchdog device (u-root's pkg/watchdog).
// Opening arms the watchdog.
func OpenDevice(path string) (Device, error) {
	w, err := uwd.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open watchdog %s: %w", path, err)
	}
	return &linuxDevice{w}, nil
}

// linuxDevice is u-root's watchdog with a correct SetTimeout: u-root
// v0.16.0 passes a pointer to the time.Duration (nanoseconds, int64) to
// WDIOC_SETTIMEOUT, which takes an int of seconds, so every timeout is
// refused with EINVAL.
type linuxDevice struct{ *uwd.Watchdog }

func (d *linuxDevice) SetTimeout(timeout time.Duration) error {
	secs := int(timeout / time.Second)
	if time.Duration(secs)*time.Second != timeout {
		return fmt.Errorf("watchdog timeout %v is not a whole number of seconds", timeout)
	}
	if err := unix.IoctlSetPointerInt(int(d.Fd()), unix.WDIOC_SETTIMEOUT, secs); err != nil {
		return err
	}
	return nil
}

// Config configures Run.
type Config struct {
	// Path of the device, e.g. /dev/watchdog0 (the board config's
	// boot.watchdog).
	Path string
	// Timeout programmed into the device (default 30s).
	Timeout time.Duration
	// Interval between pets (default Timeout/3).
	Interval time.Duration
	// Healthy reports whether the daemon's loops are alive; the watchdog
	// is petted only while it returns true. Nil means always healthy.
	Healthy func() bool
	// Open opens the device (default OpenDevice); tests inject a fake.
	Open Opener
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Path == "" {
		return errors.New("watchdog: no device path")
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Timeout < time.Second {
		return fmt.Errorf("watchdog: timeout %v is under the device's 1s resolution", c.Timeout)
	}
	if c.Interval <= 0 {
		c.Interval = c.Timeout / 3
	}
	if c.Interval >= c.Timeout {
		return fmt.Errorf("watchdog: pet interval %v must be shorter than the timeout %v", c.Interval, c.Timeout)
	}
	if c.Healthy == nil {
		c.Healthy = func() bool { return true }
	}
	if c.Open == nil {
		c.Open = OpenDevice
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Run opens and arms the watchdog, then pets it every Interval while
// Healthy returns true, until ctx is done: then it disarms the watchdog
// with a magic close and returns nil. An error opening or programming the
// device is returned at once (the device is closed armed: a board whose
// daemon cannot program its watchdog is not trusted to run unwatched).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	dev, err := cfg.Open(cfg.Path)
	if err != nil {
		return err
	}
	if err := dev.SetTimeout(cfg.Timeout); err != nil {
		dev.Close()
		return fmt.Errorf("watchdog %s: set timeout %v: %w", cfg.Path, cfg.Timeout, err)
	}
	log := cfg.Logger.With("device", cfg.Path)
	log.Info("watchdog armed", "timeout", cfg.Timeout, "interval", cfg.Interval)
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	wasHealthy := true
	pet := func() {
		healthy := cfg.Healthy()
		if healthy != wasHealthy {
			if healthy {
				log.Info("daemon healthy again: petting the watchdog")
			} else {
				log.Warn("daemon unhealthy: not petting the watchdog; the board resets unless it recovers", "within", cfg.Timeout)
			}
			wasHealthy = healthy
		}
		if !healthy {
			return
		}
		if err := dev.KeepAlive(); err != nil {
			log.Error("watchdog keepalive failed", "err", err)
		}
	}
	pet()
	for {
		select {
		case <-ctx.Done():
			if err := dev.MagicClose(); err != nil {
				return fmt.Errorf("watchdog %s: magic close: %w", cfg.Path, err)
			}
			log.Info("watchdog disarmed (clean shutdown)")
			return nil
		case <-t.C:
			pet()
		}
	}
}
