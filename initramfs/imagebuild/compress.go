package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// CompressionSuffix is the file name suffix for a compression.
func CompressionSuffix(c string) string {
	switch c {
	case "zstd":
		return ".zst"
	case "xz":
		return ".xz"
	case "gzip":
		return ".gz"
	case "lz4":
		return ".lz4"
	}
	return ""
}

// Compress compresses an initramfs with a compressor the kernel can
// unpack. The Debian tools are used (deterministic for the same input and
// level; xz with the CRC32 check the kernel's decoder needs).
func Compress(ctx context.Context, kind string, raw []byte) ([]byte, error) {
	var args []string
	switch kind {
	case "none":
		return raw, nil
	case "lz4":
		// The kernel takes LZ4's legacy frame format only (lz4 -l).
		var out bytes.Buffer
		w := lz4.NewWriter(&out)
		if err := w.Apply(lz4.LegacyOption(true), lz4.CompressionLevelOption(lz4.Level9), lz4.ConcurrencyOption(1)); err != nil {
			return nil, err
		}
		if _, err := w.Write(raw); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return out.Bytes(), nil
	case "zstd":
		// Level 10: within 2% of level 19's size at a tenth of the build
		// time; the kernel decodes all levels at about the same speed.
		// Its window (4 MiB) suits the kernel's decoder. -T1: the same
		// bytes whatever the machine.
		args = []string{"zstd", "-10", "-T1", "-q", "-c"}
	case "xz":
		args = []string{"xz", "--check=crc32", "--lzma2=preset=9e,dict=8MiB", "-T1", "-q", "-c"}
	case "gzip":
		args = []string{"gzip", "-9", "-n", "-c"}
	default:
		return nil, fmt.Errorf("compression %q: want lz4, zstd, xz, gzip or none", kind)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = bytes.NewReader(raw)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.Bytes(), nil
}

// Decompress reverses Compress (in Go, for tests and inspection).
func Decompress(kind string, b []byte) ([]byte, error) {
	switch kind {
	case "none":
		return b, nil
	case "zstd":
		d, err := zstd.NewReader(nil)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(b, nil)
	case "xz":
		r, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		_, err = out.ReadFrom(r)
		return out.Bytes(), err
	case "gzip":
		return gunzip(b)
	case "lz4":
		var out bytes.Buffer
		_, err := out.ReadFrom(lz4.NewReader(bytes.NewReader(b)))
		return out.Bytes(), err
	}
	return nil, fmt.Errorf("compression %q unknown", kind)
}

// decompressModule returns a module's plain ELF bytes.
func decompressModule(name string, b []byte) ([]byte, error) {
	var kind string
	switch {
	case strings.HasSuffix(name, ".ko"):
		return b, nil
	case strings.HasSuffix(name, ".ko.xz"):
		kind = "xz"
	case strings.HasSuffix(name, ".ko.zst"):
		kind = "zstd"
	case strings.HasSuffix(name, ".ko.gz"):
		kind = "gzip"
	default:
		return nil, fmt.Errorf("module %s: unknown compression", name)
	}
	out, err := Decompress(kind, b)
	if err != nil {
		return nil, fmt.Errorf("decompress module %s: %w", name, err)
	}
	return out, nil
}

func stripCompression(name string) string {
	for _, s := range []string{".xz", ".zst", ".gz"} {
		name = strings.TrimSuffix(name, s)
	}
	return name
}
