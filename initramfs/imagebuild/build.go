// Package imagebuild builds a board's podos image: a u-root busybox of a
// few core commands (built once and cached), then podos's own binaries,
// the board's kernel modules with their dependencies, and the board
// config, written as one reproducible cpio archive and compressed, next
// to the kernel it was built for and a manifest.
package imagebuild

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/cpio"
	"github.com/u-root/mkuimage/fileflag"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/mkuimage/uimage/builder"
	"github.com/u-root/mkuimage/uimage/initramfs"
	"github.com/u-root/uio/llog"

	boardconfig "podos.dev/podos/board-configs"
	"podos.dev/podos/initramfs/kmod"
)

// URootCommands are the u-root core commands of a sealed board: init, the
// break-glass shell (gosh, on the serial line only) and the tools an
// operator needs there. Keep initramfs/tools/tools.go in sync.
var URootCommands = []string{
	"init", "gosh", "cat", "cp", "date", "df", "dhclient", "dmesg", "echo", "free", "grep",
	"ip", "kill", "ls", "lsmod", "mkdir", "mount", "pidof", "ps", "rm", "shutdown",
	"sleep", "sync", "tail", "umount", "uname", "uptime",
}

// BareUinitScript is what the bare baseline image runs as its uinit.
const BareUinitScript = "dmesg | grep 'unpack rootfs|Freeing initrd'; echo bare-uroot-done"

// PodosBinaries are the podos commands built as standalone static
// binaries, by archive path.
var PodosBinaries = map[string]string{
	"bin/podinit":  "podos.dev/podos/initramfs/cmd/podinit",
	"bin/boardd":   "podos.dev/podos/boardd/cmd/boardd",
	"bin/boardctl": "podos.dev/podos/boardd/cmd/boardctl",
}

// WorkloadsBoardd is the boardd build with the workloads linked in; an
// image whose board config has workloads ships it as bin/boardd (one
// binary, no exec hop: it takes boardd's flags and runs --workloads
// itself).
const WorkloadsBoardd = "podos.dev/podos/boardd/cmd/boardd-workloads"

// WorkloadBinDir is where the image keeps the workload runtime
// (containerd, its runc shim, runc); podinit passes it to boardd.
const WorkloadBinDir = "usr/libexec/podos"

// WorkloadBinaries are the runtime binaries copied from
// Options.WorkloadsBin into WorkloadBinDir.
var WorkloadBinaries = []string{"containerd", "containerd-shim-runc-v2", "runc"}

// Options say what to build.
type Options struct {
	Board      string // board name (board-configs/<Board>.yaml)
	ConfigPath string
	RepoDir    string // the podos module root
	KernelPath string // /boot/vmlinuz-<release>
	// ModulesDir is /lib/modules/<release> of that kernel (default derived
	// from KernelPath).
	ModulesDir string
	// ExtraModules are loaded after the board config's boot.modules (e.g.
	// the persistent partition's filesystem).
	ExtraModules []string
	// Files are extra files, "archive/path=host/path" (e.g. containerd).
	Files []string
	// WorkloadsBin is the host directory holding WorkloadBinaries
	// (make containerd-bins: out/bin); required when the board config
	// has workloads.
	WorkloadsBin string
	// ImagesDir is the host directory holding the workloads'
	// oci-archive images by file name (make demo-image: out/images): a
	// workload image oci-archive:/usr/share/podos/images/demo.tar is
	// shipped from <ImagesDir>/demo.tar.
	ImagesDir string
	// BoarddFlags, when set, replace podinit's default boardd command line
	// (one flag or value a line in /etc/podos/boardd.flags).
	BoarddFlags []string
	Epoch       int64  // SOURCE_DATE_EPOCH: every mtime, and the clock floor
	Compression string // auto, lz4, zstd, xz, gzip or none
	CacheDir    string // where the u-root base archive is cached
	OutDir      string // out/<board>
	// Bare builds the baseline image: u-root core only (init and its
	// shell), no podos, for benchmarks.
	Bare   bool
	Logger *slog.Logger
}

// Manifest describes a built image.
type Manifest struct {
	Board             string            `json:"board"`
	Image             string            `json:"image"`
	ImageSHA256       string            `json:"image_sha256"`
	ImageBytes        int64             `json:"image_bytes"`
	UncompressedBytes int64             `json:"uncompressed_bytes"`
	Compression       string            `json:"compression"`
	Kernel            string            `json:"kernel"`
	KernelSHA256      string            `json:"kernel_sha256"`
	Versions          map[string]string `json:"versions"`
	BoardConfigSHA256 string            `json:"board_config_sha256"`
	SourceDateEpoch   int64             `json:"source_date_epoch"`
	Modules           []string          `json:"modules"`
	Files             map[string]string `json:"files"` // archive path -> sha256
}

// Build builds the image into o.OutDir and returns its manifest.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Compression == "" {
		o.Compression = "auto"
	}
	if o.Compression != "none" && o.Compression != "auto" && CompressionSuffix(o.Compression) == "" {
		return nil, fmt.Errorf("compression %q: want lz4, zstd, xz, gzip or none", o.Compression)
	}
	if o.ModulesDir == "" {
		o.ModulesDir = filepath.Join("/lib/modules", KernelRelease(o.KernelPath))
	}
	rel := filepath.Base(o.ModulesDir)
	// gobusybox changes directories: every path must be absolute.
	for _, p := range []*string{&o.CacheDir, &o.OutDir, &o.RepoDir, &o.ConfigPath} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return nil, err
		}
		*p = abs
	}
	var cfg *boardconfig.Config
	var cfgBytes []byte
	if !o.Bare {
		var err error
		if cfgBytes, err = os.ReadFile(o.ConfigPath); err != nil {
			return nil, fmt.Errorf("board config: %w", err)
		}
		if cfg, err = boardconfig.Load(o.ConfigPath); err != nil {
			return nil, err
		}
	}
	goVersion, err := goEnv(ctx, o.RepoDir, "GOVERSION")
	if err != nil {
		return nil, err
	}
	urootVersion, err := moduleVersion(ctx, o.RepoDir, "github.com/u-root/u-root")
	if err != nil {
		return nil, err
	}
	cmds := URootCommands
	if o.Bare {
		cmds = []string{"init", "gosh", "dmesg", "grep", "echo", "ls", "cat"}
	}
	base, err := baseArchive(ctx, o, cmds, goVersion, urootVersion)
	if err != nil {
		return nil, err
	}
	tree := NewTree()
	if err := tree.AddAll(cpio.Newc.Reader(bytes.NewReader(base))); err != nil {
		return nil, fmt.Errorf("base archive: %w", err)
	}
	// u-root's default resolv.conf names a public resolver; the board
	// gets its own from DHCP.
	delete(tree.recs, "etc/resolv.conf")
	var modules []string
	if o.Bare {
		// The baseline's uinit prints the kernel log's initramfs lines
		// (unpack timings) and returns to u-root's shell.
		tree.Add(cpio.Symlink("bin/uinit", "../bbin/gosh"))
		tree.File("etc/uinit.flags", []byte(fileflag.ArgvToFile([]string{"-c", BareUinitScript})+"\n"), 0o444)
	} else {
		if modules, err = addPodos(ctx, tree, o, cfg, cfgBytes, rel); err != nil {
			return nil, err
		}
	}

	var raw bytes.Buffer
	if err := tree.WriteCPIO(&raw, o.Epoch); err != nil {
		return nil, err
	}
	img, err := o.compress(ctx, raw.Bytes())
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	imgName := "initramfs.cpio" + CompressionSuffix(o.Compression)
	// Drop images of other compressions: one image per board directory.
	if old, _ := filepath.Glob(filepath.Join(o.OutDir, "initramfs.cpio*")); len(old) > 0 {
		for _, f := range old {
			if filepath.Base(f) != imgName {
				os.Remove(f)
			}
		}
	}
	if err := writeFileAtomic(filepath.Join(o.OutDir, imgName), img); err != nil {
		return nil, err
	}
	kernel, err := os.ReadFile(o.KernelPath)
	if err != nil {
		return nil, fmt.Errorf("kernel: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(o.OutDir, "vmlinuz"), kernel); err != nil {
		return nil, err
	}
	sums, err := tree.Sums()
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Board:             o.Board,
		Image:             imgName,
		ImageSHA256:       sha(img),
		ImageBytes:        int64(len(img)),
		UncompressedBytes: int64(raw.Len()),
		Compression:       o.Compression,
		Kernel:            "vmlinuz",
		KernelSHA256:      sha(kernel),
		Versions:          map[string]string{"u-root": urootVersion, "go": goVersion, "kernel": rel},
		SourceDateEpoch:   o.Epoch,
		Modules:           modules,
		Files:             sums,
	}
	if cfgBytes != nil {
		m.BoardConfigSHA256 = sha(cfgBytes)
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(o.OutDir, "manifest.json"), append(mj, '\n')); err != nil {
		return nil, err
	}
	o.Logger.Info("image built", "dir", o.OutDir, "image", imgName, "bytes", len(img), "uncompressed", raw.Len(), "files", len(sums))
	return m, nil
}

// MaxImageBytes is the compressed image budget (20 MB).
const MaxImageBytes = 20_000_000

// AutoOrder is the compressions "auto" tries, fastest kernel unpack under
// TCG first (measured: lz4 about as fast as no compression, zstd 2-3x
// slower, xz 5-8x); the first within MaxImageBytes wins.
var AutoOrder = []string{"lz4", "zstd", "xz"}

// xzOverZstd bounds how much smaller xz -9e makes an image than zstd -10
// (measured 0.81 on the board image with the workload runtime: 29.3 vs
// 36.0 MB): "auto" does not spend xz's minutes of compression when even
// that gain cannot meet the budget.
const xzOverZstd = 0.75

// compress compresses the archive, choosing the compression for "auto"
// (and recording the choice in o.Compression): the first of AutoOrder
// within MaxImageBytes, or, when none is, the fastest to unpack (the first)
// since then the budget is lost anyway and boot time is what is left to
// save (measured under TCG with the workload runtime inside: lz4 47.7 MB
// unpacks in 2.2 s, zstd 36.0 MB in 5.2 s, xz 29.3 MB in 17.6 s).
func (o *Options) compress(ctx context.Context, raw []byte) ([]byte, error) {
	if o.Compression != "auto" {
		return Compress(ctx, o.Compression, raw)
	}
	var first []byte
	prev := 0
	for _, c := range AutoOrder {
		if c == "xz" && float64(prev)*xzOverZstd > MaxImageBytes {
			o.Logger.Info("xz cannot meet the budget either; not trying it", "zstd_bytes", prev, "budget", MaxImageBytes)
			break
		}
		img, err := Compress(ctx, c, raw)
		if err != nil {
			return nil, err
		}
		if len(img) <= MaxImageBytes {
			o.Compression = c
			return img, nil
		}
		if first == nil {
			first = img
		}
		prev = len(img)
		o.Logger.Info("image over budget; trying a stronger compression", "compression", c, "bytes", len(img), "budget", MaxImageBytes)
	}
	o.Compression = AutoOrder[0]
	o.Logger.Warn("image over budget with every compression; using the fastest to unpack", "compression", o.Compression, "bytes", len(first), "budget", MaxImageBytes)
	return first, nil
}

// addPodos adds podos's binaries, the board config, the kernel modules and
// podinit's inputs; it returns the module files added.
func addPodos(ctx context.Context, tree *Tree, o Options, cfg *boardconfig.Config, cfgBytes []byte, rel string) ([]string, error) {
	binDir, err := os.MkdirTemp(o.CacheDir, "podos-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(binDir)
	paths := make([]string, 0, len(PodosBinaries))
	for p := range PodosBinaries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		out := filepath.Join(binDir, filepath.Base(p))
		pkg := PodosBinaries[p]
		if p == "bin/boardd" && len(cfg.Workloads) > 0 {
			pkg = WorkloadsBoardd
		}
		if err := goBuild(ctx, o.RepoDir, pkg, out); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		tree.File(p, b, 0o755)
	}
	// u-root's init runs /bin/uinit.
	tree.Add(cpio.Symlink("bin/uinit", "podinit"))
	for _, f := range o.Files {
		dst, src, ok := strings.Cut(f, "=")
		if !ok || dst == "" || src == "" {
			return nil, fmt.Errorf("extra file %q: want archive/path=host/path", f)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("extra file: %w", err)
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, err
		}
		tree.File(dst, b, uint64(st.Mode().Perm()))
	}

	if err := addWorkloadRuntime(tree, o, cfg); err != nil {
		return nil, err
	}

	tree.File("etc/podos/board.yaml", cfgBytes, 0o644)
	boot, err := json.MarshalIndent(cfg.Boot, "", "  ")
	if err != nil {
		return nil, err
	}
	tree.File("etc/podos/boot.json", append(boot, '\n'), 0o644)
	tree.File("etc/podos/build-epoch", []byte(strconv.FormatInt(o.Epoch, 10)+"\n"), 0o644)
	if len(o.BoarddFlags) > 0 {
		tree.File("etc/podos/boardd.flags", []byte(strings.Join(o.BoarddFlags, "\n")+"\n"), 0o644)
	}
	tree.Add(cpio.Directory("var/lib/podos", 0o755))
	tree.Add(cpio.Directory("run", 0o755))

	// Kernel modules, with dependencies, decompressed.
	names := append(append([]string(nil), cfg.Boot.Modules...), o.ExtraModules...)
	files, err := resolveModules(o.ModulesDir, names)
	if err != nil {
		return nil, err
	}
	idx, err := readDep(o.ModulesDir)
	if err != nil {
		return nil, err
	}
	var plain []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(o.ModulesDir, f))
		if err != nil {
			return nil, fmt.Errorf("module: %w", err)
		}
		if b, err = decompressModule(f, b); err != nil {
			return nil, err
		}
		p := stripCompression(f)
		plain = append(plain, p)
		tree.File(filepath.Join("lib/modules", rel, p), b, 0o644)
	}
	// The image's modules.dep names the decompressed files.
	var dep strings.Builder
	plainIdx := kmod.Index{}
	for _, f := range files {
		d := idx[kmod.Name(f)]
		nd := kmod.Dep{Path: stripCompression(d.Path)}
		for _, x := range d.Deps {
			nd.Deps = append(nd.Deps, stripCompression(x))
		}
		plainIdx[kmod.Name(f)] = nd
	}
	dep.WriteString(plainIdx.Subset(plain))
	tree.File(filepath.Join("lib/modules", rel, "modules.dep"), []byte(dep.String()), 0o644)
	tree.File("etc/podos/modules", []byte(strings.Join(names, "\n")+"\n"), 0o644)
	return plain, nil
}

// addWorkloadRuntime adds, for a board config with workloads, containerd,
// its shim and runc, and every oci-archive image the workloads name.
func addWorkloadRuntime(tree *Tree, o Options, cfg *boardconfig.Config) error {
	if len(cfg.Workloads) == 0 {
		return nil
	}
	if o.WorkloadsBin == "" {
		return fmt.Errorf("board config has workloads: the image needs containerd, its shim and runc (-workloads-bin; make containerd-bins)")
	}
	for _, name := range WorkloadBinaries {
		if err := addHostFile(tree, filepath.Join(WorkloadBinDir, name), filepath.Join(o.WorkloadsBin, name)); err != nil {
			return fmt.Errorf("workload runtime: %w (make containerd-bins)", err)
		}
	}
	seen := map[string]bool{}
	for _, w := range cfg.Workloads {
		p, ok := strings.CutPrefix(w.Image, "oci-archive:")
		if !ok || seen[p] {
			continue // a registry reference is pulled at run time
		}
		seen[p] = true
		if !filepath.IsAbs(p) {
			return fmt.Errorf("workload %s: image %q: want an absolute path in the image", w.Name, w.Image)
		}
		if o.ImagesDir == "" {
			return fmt.Errorf("workload %s: image %q: no images directory (-images; make demo-image)", w.Name, w.Image)
		}
		if err := addHostFile(tree, strings.TrimPrefix(p, "/"), filepath.Join(o.ImagesDir, filepath.Base(p))); err != nil {
			return fmt.Errorf("workload %s: %w", w.Name, err)
		}
	}
	return nil
}

// addHostFile adds the host file src at archive path dst, keeping its
// permission bits.
func addHostFile(tree *Tree, dst, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tree.File(dst, b, uint64(st.Mode().Perm()))
	return nil
}

func readDep(dir string) (kmod.Index, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	defer f.Close()
	return kmod.Parse(f)
}

// resolveModules returns the module files (relative to dir) for names and
// their dependencies, in load order; names built into the kernel are
// skipped.
func resolveModules(dir string, names []string) ([]string, error) {
	idx, err := readDep(dir)
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		builtin, err = kmod.ParseBuiltin(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return idx.Order(names, builtin)
}

// baseArchive returns the u-root busybox archive for cmds, from the cache
// when the same commands were built with the same Go and u-root.
func baseArchive(ctx context.Context, o Options, cmds []string, goVersion, urootVersion string) ([]byte, error) {
	// goshsmall: gosh without its full-screen line editor, a plain "$ "
	// prompt that a serial line (and a test driving it) can use.
	tags := []string{"goshsmall"}
	key := sha([]byte(strings.Join(append([]string{goVersion, urootVersion, runtime.GOARCH, strings.Join(tags, ",")}, cmds...), "\n")))[:16]
	cached := filepath.Join(o.CacheDir, "uroot-base-"+key+".cpio")
	if b, err := os.ReadFile(cached); err == nil {
		o.Logger.Info("u-root base archive from cache", "path", cached)
		return b, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(o.CacheDir, "uroot-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	pkgs := make([]string, len(cmds))
	for i, c := range cmds {
		pkgs[i] = "github.com/u-root/u-root/cmds/core/" + c
	}
	env := golang.Default(golang.DisableCGO(), golang.WithWorkingDir(o.RepoDir), golang.WithGOARCH(runtime.GOARCH), golang.WithBuildTag(tags...))
	out := cpio.InMemArchive()
	l := llog.New(slog.LevelWarn, func(format string, v ...any) { o.Logger.Info(fmt.Sprintf(format, v...)) })
	o.Logger.Info("building the u-root base archive (once)", "commands", len(cmds))
	err = uimage.CreateInitramfs(l, uimage.Opts{
		Env:          env,
		TempDir:      tmp,
		Commands:     []uimage.Commands{{Builder: &builder.GBBBuilder{ShellBang: false}, Packages: pkgs, BuildOpts: &golang.BuildOpts{}}},
		BaseArchive:  &initramfs.Archive{Archive: uimage.DefaultRamfs()},
		OutputFile:   &initramfs.Archive{Archive: out},
		InitCmd:      "init",
		DefaultShell: "gosh",
		SkipLDD:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("u-root base archive: %w", err)
	}
	t := NewTree()
	if err := t.AddAll(out.Reader()); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.WriteCPIO(&buf, o.Epoch); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(cached, buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// goBuild builds a static, stripped, path-free binary.
func goBuild(ctx context.Context, dir, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.String())
	}
	return nil
}

func goEnv(ctx context.Context, dir, name string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", name)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func moduleVersion(ctx context.Context, dir, mod string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", mod)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list -m %s: %w: %s", mod, err, ee.Stderr)
		}
		return "", fmt.Errorf("go list -m %s: %w", mod, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// KernelRelease returns the release of a /boot/vmlinuz-<release> path.
func KernelRelease(kernelPath string) string {
	return strings.TrimPrefix(filepath.Base(kernelPath), "vmlinuz-")
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
