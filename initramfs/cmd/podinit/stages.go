package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/initramfs/kmod"
)

// bootSection is the board config's boot section.
type bootSection = boardconfig.Boot

func readBoot(path string) (bootSection, error) {
	var b bootSection
	data, err := os.ReadFile(path)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

type mnt struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	magic                  int64 // statfs f_type when mounted
}

// mountAll mounts what u-root's init may not have, idempotently, and
// replaces u-root's cgroup v1 tree with the unified cgroup2 hierarchy
// (the kernel runs with cgroup_no_v1=all).
func mountAll() error {
	var errs []error
	for _, m := range []mnt{
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", unix.TMPFS_MAGIC},
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", unix.PROC_SUPER_MAGIC},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", unix.SYSFS_MAGIC},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", unix.TMPFS_MAGIC},
	} {
		if err := mountOnce(m); err != nil {
			errs = append(errs, err)
		}
	}
	if err := mountCgroup2("/sys/fs/cgroup"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mountOnce mounts m unless its target already holds a filesystem of
// m's type (and is a mount point, not the initramfs itself).
func mountOnce(m mnt) error {
	if err := os.MkdirAll(m.target, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", m.target, err)
	}
	if isMountPoint(m.target) {
		var st unix.Statfs_t
		if unix.Statfs(m.target, &st) == nil && int64(st.Type) == m.magic {
			return nil
		}
	}
	if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
	}
	return nil
}

// isMountPoint reports whether p is listed in /proc/self/mountinfo.
func isMountPoint(p string) bool {
	for _, mp := range mountPoints() {
		if mp == p {
			return true
		}
	}
	return false
}

func mountPoints() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 {
			out = append(out, fields[4])
		}
	}
	return out
}

func mountCgroup2(dir string) error {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) == nil && int64(st.Type) == unix.CGROUP2_SUPER_MAGIC {
		return enableControllers(dir)
	}
	// Unmount u-root's v1 layout (a tmpfs and controller mounts below it),
	// deepest first.
	var below []string
	for _, mp := range mountPoints() {
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			below = append(below, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(below)))
	for _, mp := range below {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "nsdelegate"); err != nil {
		return fmt.Errorf("mount cgroup2 on %s: %w", dir, err)
	}
	return enableControllers(dir)
}

// enableControllers delegates every available controller to child groups
// (containerd puts each workload in its own).
func enableControllers(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	var want []string
	for _, c := range strings.Fields(string(b)) {
		want = append(want, "+"+c)
	}
	if len(want) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(want, " ")), 0o644); err != nil {
		return fmt.Errorf("enable cgroup controllers %v: %w", want, err)
	}
	return nil
}

// loadModules loads the modules listed in list, each after its
// dependencies (from the image's modules.dep), with finit_module.
func loadModules(log *slog.Logger, list string) error {
	names, err := readLines(list)
	if err != nil {
		return err
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return err
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return err
	}
	idx, err := kmod.Parse(f)
	f.Close()
	if err != nil {
		return err
	}
	files, err := idx.Order(names, nil)
	if err != nil {
		return err
	}
	errs := loadParallel(dir, files, idx, 4)
	log.Info("modules loaded", "count", len(files)-len(errs), "requested", len(names))
	return errors.Join(errs...)
}

// loadParallel loads module files, each as soon as its dependencies are
// in, at most n at a time: probing drivers (ipmi_si's KCS handshake, NIC
// and disk probes) then overlaps on the board's CPUs.
func loadParallel(dir string, files []string, idx kmod.Index, n int) []error {
	done := make(map[string]chan struct{}, len(files))
	for _, f := range files {
		done[f] = make(chan struct{})
	}
	after := nicChain(files)
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[f])
			for _, d := range append(idx[kmod.Name(f)].Deps, after[f]) {
				if ch, ok := done[d]; ok {
					<-ch
				}
			}
			sem <- struct{}{}
			err := finit(filepath.Join(dir, f))
			<-sem
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// nicChain makes each NIC driver wait for the one before it: interface
// names (eth0, eth1) follow the order NIC drivers register in, so they
// keep the configured order among themselves.
func nicChain(files []string) map[string]string {
	after := map[string]string{}
	prev := ""
	for _, f := range files {
		if strings.HasPrefix(f, "kernel/drivers/net/") {
			if prev != "" {
				after[f] = prev
			}
			prev = f
		}
	}
	return after
}

func finit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load %s: %w", filepath.Base(path), err)
	}
	return nil
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out, nil
}

// mountPersistent mounts the persistent partition (ext4, formatted when the
// board is provisioned) on dir; without one, or when it cannot be mounted,
// dir is a tmpfs so the board still runs (and the error is reported).
func mountPersistent(ctx context.Context, log *slog.Logger, dev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if isMountPoint(dir) {
		return nil
	}
	tmpfs := func(cause error) error {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return errors.Join(cause, fmt.Errorf("mount tmpfs on %s: %w", dir, err))
		}
		if cause != nil {
			log.Warn("persistent storage unavailable: state is on tmpfs and lost at reboot", "dir", dir, "err", cause)
		}
		return cause
	}
	if dev == "" {
		return tmpfs(nil)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(dev); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return tmpfs(fmt.Errorf("device %s did not appear: %w", dev, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := unix.Mount(dev, dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, ""); err != nil {
		return tmpfs(fmt.Errorf("mount %s (ext4) on %s: %w", dev, dir, err))
	}
	log.Info("persistent storage mounted", "device", dev, "dir", dir)
	return nil
}

// floorClock sets the clock to the image's build time when it is earlier
// (a board whose RTC lost power must not date events before its firmware).
func floorClock(log *slog.Logger, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	epoch, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if now := time.Now().Unix(); now >= epoch {
		return nil
	}
	tv := unix.NsecToTimeval(epoch * int64(time.Second))
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("set clock to build time: %w", err)
	}
	log.Warn("clock was before the image's build time; set to it", "epoch", epoch)
	return nil
}

// setupNetwork configures the management interface by DHCP (u-root's
// dhclient) or statically.
func setupNetwork(ctx context.Context, log *slog.Logger, n boardconfig.Network) error {
	ifname := n.Interface
	if ifname == "" {
		ifname = "eth0"
	}
	// The NIC's driver may still be probing.
	var link netlink.Link
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := netlink.LinkByName(ifname)
		if err == nil {
			link = l
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s: %w", ifname, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	switch n.Mode {
	case "static":
		addr, err := netlink.ParseAddr(n.Address)
		if err != nil {
			return fmt.Errorf("static address %q: %w", n.Address, err)
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("%s up: %w", ifname, err)
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("%s address: %w", ifname, err)
		}
		if n.Gateway != "" {
			gw := net.ParseIP(n.Gateway)
			if gw == nil {
				return fmt.Errorf("gateway %q is not an IP address", n.Gateway)
			}
			if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
				return fmt.Errorf("default route: %w", err)
			}
		}
		log.Info("network configured", "interface", ifname, "address", n.Address)
		return nil
	case "", "dhcp":
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		results := dhclient.SendRequests(ctx, []netlink.Link{link}, true, false,
			dhclient.Config{Timeout: 5 * time.Second, Retries: 5, LogLevel: dhclient.LogSummary}, 20*time.Second)
		var errs []error
		for r := range results {
			if r.Err != nil {
				errs = append(errs, r.Err)
				continue
			}
			if err := r.Lease.Configure(); err != nil {
				return fmt.Errorf("configure %s: %w", ifname, err)
			}
			log.Info("network configured by DHCP", "interface", ifname, "lease", r.Lease.String())
			return nil
		}
		return fmt.Errorf("DHCP on %s: no lease: %w", ifname, errors.Join(errs...))
	default:
		return fmt.Errorf("network mode %q: want dhcp or static", n.Mode)
	}
}
