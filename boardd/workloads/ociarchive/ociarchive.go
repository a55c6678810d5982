// Package ociarchive builds OCI image archives (an OCI image layout in a
// tar) from static binaries with go-containerregistry, with no registry:
// the form boardd imports with containerd's client.Import.
package ociarchive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image describes a one-binary image.
type Image struct {
	Name    string   // e.g. "podos.dev/demo:latest": the io.containerd.image.name annotation
	Binary  string   // path of the static binary on the build host
	Path    string   // its path in the image, e.g. "/heartbeat"
	Cmd     []string // default args after the entrypoint
	Env     []string
	Created time.Time // image and file times (SOURCE_DATE_EPOCH for reproducible archives)
}

// Write writes the image as an OCI archive to w.
func Write(w io.Writer, img Image) error {
	bin, err := os.ReadFile(img.Binary)
	if err != nil {
		return fmt.Errorf("ociarchive: %w", err)
	}
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	if err := tw.WriteHeader(&tar.Header{Name: img.Path[1:], Mode: 0o755, Size: int64(len(bin)), ModTime: img.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("ociarchive: layer: %w", err)
	}
	if _, err := tw.Write(bin); err != nil {
		return fmt.Errorf("ociarchive: layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ociarchive: layer: %w", err)
	}
	data := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return fmt.Errorf("ociarchive: layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	im, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return fmt.Errorf("ociarchive: %w", err)
	}
	cf, err := im.ConfigFile()
	if err != nil {
		return fmt.Errorf("ociarchive: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: img.Created}
	cf.Config.Entrypoint = []string{img.Path}
	cf.Config.Cmd = img.Cmd
	cf.Config.Env = append([]string{"PATH=/"}, img.Env...)
	im, err = mutate.ConfigFile(im, cf)
	if err != nil {
		return fmt.Errorf("ociarchive: %w", err)
	}
	dir, err := os.MkdirTemp("", "ociarchive-")
	if err != nil {
		return fmt.Errorf("ociarchive: %w", err)
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("ociarchive: layout: %w", err)
	}
	ann := map[string]string{
		"io.containerd.image.name":          img.Name,
		"org.opencontainers.image.ref.name": img.Name,
	}
	if err := p.AppendImage(im, layout.WithAnnotations(ann), layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})); err != nil {
		return fmt.Errorf("ociarchive: layout: %w", err)
	}
	return tarDir(w, dir, img.Created)
}

// tarDir writes dir as a tar with sorted entries and fixed times and
// owners, so the archive is reproducible.
func tarDir(w io.Writer, dir string, mtime time.Time) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ociarchive: %w", err)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("ociarchive: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return fmt.Errorf("ociarchive: %w", err)
			}
			continue
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("ociarchive: %w", err)
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("ociarchive: %w", err)
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("ociarchive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ociarchive: %w", err)
	}
	return nil
}
