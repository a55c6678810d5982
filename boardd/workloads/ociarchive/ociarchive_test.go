package ociarchive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteIsReproducibleOCILayout(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "prog")
	os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755)
	img := Image{Name: "podos.dev/test:1", Binary: bin, Path: "/prog", Cmd: []string{"-x"}, Created: time.Unix(1767225600, 0).UTC()}
	var a, b bytes.Buffer
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two writes differ: not reproducible")
	}
	files := map[string][]byte{}
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(img.Created) || h.Uid != 0 {
			t.Errorf("%s: time %v uid %d", h.Name, h.ModTime, h.Uid)
		}
		c, _ := io.ReadAll(tr)
		files[h.Name] = c
	}
	if _, ok := files["oci-layout"]; !ok {
		t.Fatalf("no oci-layout in %v", keys(files))
	}
	var idx struct {
		Manifests []struct {
			MediaType   string            `json:"mediaType"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %s", files["index.json"])
	}
	m := idx.Manifests[0]
	if m.Annotations["io.containerd.image.name"] != img.Name || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest descriptor %+v", m)
	}
	if err := Write(io.Discard, Image{Name: "x", Binary: "/nonexistent", Path: "/x"}); err == nil {
		t.Error("missing binary accepted")
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
