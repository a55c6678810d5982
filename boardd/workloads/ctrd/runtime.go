package ctrd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"podos.dev/podos/boardd/workloads"
)

// Namespace is the containerd namespace of boardd's workloads.
const Namespace = "podos"

// labelHash stores workloads.Hash of the spec a container was made from.
const labelHash = "dev.podos.spec-hash"

// RuntimeConfig configures the containerd client runtime.
type RuntimeConfig struct {
	Address string // containerd's socket
	// RuncPath is the runc binary the shim runs (empty: the shim's PATH).
	RuncPath string
	// FIFODir holds the output FIFOs (default <os.TempDir()>/podos-fifo).
	FIFODir string
	// NoPivotRoot: "auto" (default) uses it when / is an initramfs
	// (rootfs, ramfs or tmpfs), where pivot_root fails.
	NoPivotRoot string
	// Snapshotter: "" tries overlayfs and falls back to native.
	Snapshotter string
	// CgroupParent is the cgroup under which each workload gets
	// <parent>/<id>. The default, /podos-<hash of Address>, keeps two
	// containerds on one host (tests, a host run beside a board run) out of
	// each other's cgroups: containerd's own default, /<namespace>/<id>,
	// would be shared by every daemon using the podos namespace.
	CgroupParent string
	Logger       *slog.Logger
}

// cgroupParent returns the configured or default cgroup parent.
func (c RuntimeConfig) cgroupParent() string {
	if c.CgroupParent != "" {
		return c.CgroupParent
	}
	sum := sha256.Sum256([]byte(c.Address))
	return "/" + Namespace + "-" + hex.EncodeToString(sum[:4])
}

// Runtime implements workloads.Runtime on containerd.
type Runtime struct {
	cfg     RuntimeConfig
	log     *slog.Logger
	client  *containerd.Client
	noPivot bool

	archiveMu sync.Mutex // serializes EnsureImage of archives
	importMu  sync.Mutex // one import at a time: concurrent imports of one archive collide on content locks

	mu       sync.Mutex
	snap     string                     // resolved snapshotter
	tasks    map[string]containerd.Task // tasks whose IO this process holds
	imports  map[string][]string        // archive path+size+mtime -> image names
	unpacked map[string]bool            // image@digest|snapshotter known unpacked (containerd GC labels keep its snapshots)
}

var _ workloads.Runtime = (*Runtime)(nil)

// NewRuntime connects (lazily: containerd may still be starting) to
// containerd at cfg.Address.
func NewRuntime(cfg RuntimeConfig) (*Runtime, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.FIFODir == "" {
		cfg.FIFODir = os.TempDir() + "/podos-fifo"
	}
	if err := os.MkdirAll(cfg.FIFODir, 0o700); err != nil {
		return nil, fmt.Errorf("ctrd: fifo dir: %w", err)
	}
	c, err := containerd.New(cfg.Address, containerd.WithDefaultNamespace(Namespace), containerd.WithTimeout(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("ctrd: client: %w", err)
	}
	r := &Runtime{cfg: cfg, log: cfg.Logger.With("component", "ctrd"), client: c,
		tasks: map[string]containerd.Task{}, imports: map[string][]string{}, unpacked: map[string]bool{}}
	switch cfg.NoPivotRoot {
	case "true", "yes", "1":
		r.noPivot = true
	case "", "auto":
		r.noPivot = rootIsInitramfs()
	}
	return r, nil
}

// Close closes the client connection.
func (r *Runtime) Close() error { return r.client.Close() }

// Client is the underlying containerd client (for benchmarks and tests).
func (r *Runtime) Client() *containerd.Client { return r.client }

// rootIsInitramfs reports whether / is rootfs/ramfs/tmpfs, where runc
// cannot pivot_root.
func rootIsInitramfs() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return false
	}
	return st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}

// wrap maps containerd errors onto the workloads sentinel errors.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%s: %w: %w", op, workloads.ErrNotFound, err)
	case errdefs.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w: %w", op, workloads.ErrUnavailable, err)
	}
	if strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "Unavailable") {
		return fmt.Errorf("%s: %w: %w", op, workloads.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Snapshotter returns the snapshotter in use: overlayfs when containerd
// loaded it, else native.
func (r *Runtime) Snapshotter(ctx context.Context) (string, error) {
	r.mu.Lock()
	s := r.snap
	r.mu.Unlock()
	if s != "" {
		return s, nil
	}
	if r.cfg.Snapshotter != "" {
		s = r.cfg.Snapshotter
	} else {
		resp, err := r.client.IntrospectionService().Plugins(ctx, "type==io.containerd.snapshotter.v1")
		if err != nil {
			return "", wrap("introspect snapshotters", err)
		}
		s = "native"
		for _, p := range resp.Plugins {
			if p.ID == "overlayfs" && p.InitErr == nil {
				s = "overlayfs"
			}
		}
	}
	r.mu.Lock()
	r.snap = s
	r.mu.Unlock()
	r.log.Info("snapshotter", "name", s)
	return s, nil
}

// EnsureImage implements workloads.Runtime.
func (r *Runtime) EnsureImage(ctx context.Context, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, longCall)
	defer cancel()
	snap, err := r.Snapshotter(ctx)
	if err != nil {
		return "", err
	}
	if path, ok := strings.CutPrefix(ref, workloads.ArchivePrefix); ok {
		fi, err := os.Stat(path)
		if err != nil {
			return "", fmt.Errorf("image archive: %w", err)
		}
		key := fmt.Sprintf("%s|%d|%d", path, fi.Size(), fi.ModTime().UnixNano())
		// One import per archive even when several workloads start at once.
		r.archiveMu.Lock()
		defer r.archiveMu.Unlock()
		r.mu.Lock()
		names := r.imports[key]
		r.mu.Unlock()
		if len(names) > 0 {
			if img, err := r.client.GetImage(ctx, names[0]); err == nil {
				return names[0], r.unpack(ctx, img, snap)
			}
		}
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("image archive: %w", err)
		}
		defer f.Close()
		names, err = r.ImportArchive(ctx, f)
		if err != nil {
			return "", err
		}
		if len(names) == 0 {
			return "", fmt.Errorf("image archive %s names no image (io.containerd.image.name annotation)", path)
		}
		r.mu.Lock()
		r.imports[key] = names
		r.mu.Unlock()
		return names[0], nil
	}
	img, err := r.client.GetImage(ctx, ref)
	if err == nil {
		return ref, r.unpack(ctx, img, snap)
	}
	if !errdefs.IsNotFound(err) {
		return "", wrap("get image", err)
	}
	if _, err := r.client.Pull(ctx, ref, containerd.WithPullUnpack, containerd.WithPullSnapshotter(snap)); err != nil {
		return "", wrap("pull "+ref, err)
	}
	return ref, nil
}

func (r *Runtime) unpack(ctx context.Context, img containerd.Image, snap string) error {
	key := img.Name() + "@" + img.Target().Digest.String() + "|" + snap
	r.mu.Lock()
	done := r.unpacked[key]
	r.mu.Unlock()
	if done {
		return nil
	}
	ok, err := img.IsUnpacked(ctx, snap)
	if err != nil {
		return wrap("check unpacked", err)
	}
	if !ok {
		if err := img.Unpack(ctx, snap); err != nil {
			return wrap("unpack "+img.Name(), err)
		}
	}
	r.mu.Lock()
	r.unpacked[key] = true
	r.mu.Unlock()
	return nil
}

// ImportArchive implements workloads.Runtime: it imports an OCI (or
// Docker) image archive and unpacks every named image.
func (r *Runtime) ImportArchive(ctx context.Context, rd io.Reader) ([]string, error) {
	snap, err := r.Snapshotter(ctx)
	if err != nil {
		return nil, err
	}
	r.importMu.Lock()
	defer r.importMu.Unlock()
	imgs, err := r.client.Import(ctx, rd)
	if err != nil {
		return nil, wrap("import image archive", err)
	}
	var names []string
	for _, i := range imgs {
		img := containerd.NewImage(r.client, i)
		if err := r.unpack(ctx, img, snap); err != nil {
			return nil, err
		}
		names = append(names, i.Name)
	}
	sort.Strings(names)
	return names, nil
}

// Start implements workloads.Runtime.
func (r *Runtime) Start(ctx context.Context, id string, spec workloads.TaskSpec, out workloads.Output) error {
	ctx, cancel := context.WithTimeout(ctx, longCall)
	defer cancel()
	snap, err := r.Snapshotter(ctx)
	if err != nil {
		return err
	}
	img, err := r.client.GetImage(ctx, spec.Image)
	if err != nil {
		return wrap("get image "+spec.Image, err)
	}
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	sopts := []oci.SpecOpts{
		oci.WithImageConfigArgs(img, spec.Args),
		oci.WithEnv(env),
		// No CNI on a board: workloads share the board's network.
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithCgroup(path.Join(r.cfg.cgroupParent(), id)),
	}
	if spec.MemoryMB > 0 {
		sopts = append(sopts, oci.WithMemoryLimit(uint64(spec.MemoryMB)<<20))
	}
	if spec.CPU > 0 {
		q, p := cfs(spec.CPU)
		sopts = append(sopts, oci.WithCPUCFS(q, p))
	}
	ropts := &options.Options{NoPivotRoot: r.noPivot, BinaryName: r.cfg.RuncPath}
	create := func() (containerd.Container, error) {
		return r.client.NewContainer(ctx, id,
			containerd.WithImage(img),
			containerd.WithSnapshotter(snap),
			containerd.WithNewSnapshot(id+"-snap", img),
			containerd.WithContainerLabels(map[string]string{labelHash: spec.Hash}),
			containerd.WithRuntime("io.containerd.runc.v2", ropts),
			containerd.WithNewSpec(sopts...),
		)
	}
	c, err := create()
	if errdefs.IsAlreadyExists(err) {
		// A leftover container (or its snapshot) of this id: replace it.
		if err := r.Remove(ctx, id); err != nil && !errors.Is(err, workloads.ErrNotFound) {
			return err
		}
		if err := r.removeSnapshot(ctx, snap, id+"-snap"); err != nil {
			return err
		}
		c, err = create()
	}
	if err != nil {
		return wrap("create container "+id, err)
	}
	t, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, out.Stdout, out.Stderr), cio.WithFIFODir(r.cfg.FIFODir)))
	if err != nil {
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return wrap("create task "+id, err)
	}
	if err := t.Start(ctx); err != nil {
		_, _ = t.Delete(ctx, containerd.WithProcessKill)
		_ = c.Delete(ctx, containerd.WithSnapshotCleanup)
		return wrap("start task "+id, err)
	}
	r.mu.Lock()
	r.tasks[id] = t
	r.mu.Unlock()
	return nil
}

// removeSnapshot deletes a snapshot left without its container.
func (r *Runtime) removeSnapshot(ctx context.Context, snap, key string) error {
	err := r.client.SnapshotService(snap).Remove(ctx, key)
	if err != nil && !errdefs.IsNotFound(err) {
		return wrap("remove snapshot "+key, err)
	}
	return nil
}

// cfs converts cores to a CFS quota and period (100 ms period).
func cfs(cores float64) (int64, uint64) {
	const period = 100000
	return int64(cores * period), period
}

// Attach implements workloads.Runtime.
func (r *Runtime) Attach(ctx context.Context, id string, out workloads.Output) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	r.mu.Lock()
	_, held := r.tasks[id]
	r.mu.Unlock()
	if held {
		return nil // this process still copies its output
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap("load container "+id, err)
	}
	t, err := c.Task(ctx, cio.NewAttach(cio.WithStreams(nil, out.Stdout, out.Stderr)))
	if err != nil {
		return wrap("attach task "+id, err)
	}
	r.mu.Lock()
	r.tasks[id] = t
	r.mu.Unlock()
	return nil
}

// task returns the task of id: the one holding our IO if any.
func (r *Runtime) task(ctx context.Context, id string) (containerd.Task, error) {
	r.mu.Lock()
	t, ok := r.tasks[id]
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, wrap("load container "+id, err)
	}
	t, err = c.Task(ctx, nil)
	if err != nil {
		return nil, wrap("load task "+id, err)
	}
	return t, nil
}

// Per-call bounds, so a hung containerd cannot hang the Manager or the
// Protector: short calls, and calls that create or import.
const (
	shortCall = 15 * time.Second
	longCall  = 5 * time.Minute
)

// Status implements workloads.Runtime.
func (r *Runtime) Status(ctx context.Context, id string) (workloads.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return workloads.Status{}, wrap("load container "+id, err)
	}
	st := workloads.Status{State: workloads.TaskAbsent, Container: true}
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err == nil {
		st.Hash = info.Labels[labelHash]
	}
	t, err := r.task(ctx, id)
	if errors.Is(err, workloads.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	ts, err := t.Status(ctx)
	if errdefs.IsNotFound(err) {
		r.forget(id)
		return st, nil
	}
	if err != nil {
		return st, wrap("task status "+id, err)
	}
	st.Pid = t.Pid()
	switch ts.Status {
	case containerd.Running:
		st.State = workloads.TaskRunning
	case containerd.Paused, containerd.Pausing:
		st.State = workloads.TaskPaused
	case containerd.Created:
		st.State = workloads.TaskCreated
	case containerd.Stopped:
		st.State = workloads.TaskStopped
		st.ExitCode = int(ts.ExitStatus)
		st.ExitedAt = ts.ExitTime
	default:
		return st, fmt.Errorf("task %s: %w: status %q", id, workloads.ErrUnavailable, ts.Status)
	}
	return st, nil
}

func (r *Runtime) forget(id string) {
	r.mu.Lock()
	delete(r.tasks, id)
	r.mu.Unlock()
}

// Wait implements workloads.Runtime.
func (r *Runtime) Wait(ctx context.Context, id string) (<-chan workloads.Exit, error) {
	t, err := r.task(ctx, id)
	if err != nil {
		return nil, err
	}
	ch, err := t.Wait(ctx)
	if err != nil {
		return nil, wrap("wait "+id, err)
	}
	out := make(chan workloads.Exit, 1)
	go func() {
		select {
		case es := <-ch:
			code, at, err := es.Result()
			out <- workloads.Exit{Code: int(code), At: at, Err: wrap("wait "+id, err)}
		case <-ctx.Done():
			out <- workloads.Exit{Err: ctx.Err()}
		}
	}()
	return out, nil
}

// Pause implements workloads.Runtime.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	t, err := r.task(ctx, id)
	if err != nil {
		return err
	}
	return wrap("pause "+id, t.Pause(ctx))
}

// Resume implements workloads.Runtime.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	t, err := r.task(ctx, id)
	if err != nil {
		return err
	}
	return wrap("resume "+id, t.Resume(ctx))
}

// SetCPU implements workloads.Runtime (runc update: cpu.max on cgroup v2,
// cfs_quota_us on v1).
func (r *Runtime) SetCPU(ctx context.Context, id string, cores float64) error {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	t, err := r.task(ctx, id)
	if err != nil {
		return err
	}
	q, p := int64(-1), uint64(100000)
	if cores > 0 {
		q, p = cfs(cores)
	}
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &q, Period: &p}}
	return wrap("update cpu "+id, t.Update(ctx, containerd.WithResources(res)))
}

// Stop implements workloads.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, grace+shortCall)
	defer cancel()
	t, err := r.task(ctx, id)
	if err != nil {
		return err
	}
	defer r.forget(id)
	st, err := t.Status(ctx)
	if err != nil {
		return wrap("task status "+id, err)
	}
	if st.Status != containerd.Stopped {
		exited, err := t.Wait(ctx)
		if err != nil {
			return wrap("wait "+id, err)
		}
		if st.Status == containerd.Paused || st.Status == containerd.Pausing {
			// A frozen task cannot handle SIGTERM: thaw it first.
			_ = t.Resume(ctx)
		}
		sig := syscall.SIGTERM
		if grace <= 0 {
			sig = syscall.SIGKILL
		}
		if err := t.Kill(ctx, sig, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return wrap("kill "+id, err)
		}
		timer := time.NewTimer(max(grace, time.Millisecond))
		defer timer.Stop()
		select {
		case <-exited:
		case <-timer.C:
			if err := t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
				return wrap("kill "+id, err)
			}
			select {
			case <-exited:
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, err := t.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return wrap("delete task "+id, err)
	}
	return nil
}

// Remove implements workloads.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return wrap("load container "+id, err)
	}
	if err := r.Stop(ctx, id, 2*time.Second); err != nil && !errors.Is(err, workloads.ErrNotFound) {
		return err
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return wrap("delete container "+id, err)
	}
	return nil
}

// Exec implements workloads.Runtime.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, stdout, stderr io.Writer) (int, error) {
	t, err := r.task(ctx, id)
	if err != nil {
		return 0, err
	}
	spec, err := t.Spec(ctx)
	if err != nil {
		return 0, wrap("task spec "+id, err)
	}
	p := *spec.Process
	p.Args = cmd
	p.Terminal = false
	execID := fmt.Sprintf("exec-%d", time.Now().UnixNano())
	proc, err := t.Exec(ctx, execID, &p, cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(r.cfg.FIFODir)))
	if err != nil {
		return 0, wrap("exec in "+id, err)
	}
	defer proc.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exited, err := proc.Wait(ctx)
	if err != nil {
		return 0, wrap("exec wait", err)
	}
	if err := proc.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return 0, wrap("exec start", err)
		}
		return 0, fmt.Errorf("%w: %w", workloads.ErrExecStart, wrap("exec start", err))
	}
	select {
	case es := <-exited:
		code, _, err := es.Result()
		if err != nil {
			return 0, wrap("exec", err)
		}
		proc.IO().Wait()
		return int(code), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("exec in %s: %w", id, ctx.Err())
	}
}

// List implements workloads.Runtime.
func (r *Runtime) List(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, shortCall)
	defer cancel()
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, wrap("list containers", err)
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID())
	}
	sort.Strings(ids)
	return ids, nil
}
