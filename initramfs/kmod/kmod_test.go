package kmod

import (
	"reflect"
	"strings"
	"testing"
)

const dep = `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/drivers/char/ipmi/ipmi_si.ko: kernel/drivers/char/ipmi/ipmi_msghandler.ko
kernel/drivers/char/ipmi/ipmi_msghandler.ko:
kernel/drivers/nvme/host/nvme.ko: kernel/drivers/nvme/host/nvme-core.ko kernel/lib/crc64.ko
kernel/drivers/nvme/host/nvme-core.ko: kernel/lib/crc64.ko
kernel/lib/crc64.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/x/a.ko.xz: kernel/x/b.ko.xz
kernel/x/b.ko.xz: kernel/x/a.ko.xz
`

func TestOrder(t *testing.T) {
	idx, err := Parse(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{"tpm_crb": true}
	tests := []struct {
		name    string
		mods    []string
		want    []string
		wantErr string
	}{
		{"deps first", []string{"ipmi_si"}, []string{"kernel/drivers/char/ipmi/ipmi_msghandler.ko", "kernel/drivers/char/ipmi/ipmi_si.ko"}, ""},
		{"each once, requested order kept", []string{"ipmi_msghandler", "ipmi_si", "ipmi_msghandler"}, []string{"kernel/drivers/char/ipmi/ipmi_msghandler.ko", "kernel/drivers/char/ipmi/ipmi_si.ko"}, ""},
		{"dash folds to underscore", []string{"nvme-core"}, []string{"kernel/lib/crc64.ko", "kernel/drivers/nvme/host/nvme-core.ko"}, ""},
		{"transitive", []string{"nvme"}, []string{"kernel/lib/crc64.ko", "kernel/drivers/nvme/host/nvme-core.ko", "kernel/drivers/nvme/host/nvme.ko"}, ""},
		{"last listed dependency first", []string{"ext4"}, []string{"kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko", "kernel/lib/crc16.ko", "kernel/fs/ext4/ext4.ko"}, ""},
		{"shared dep once", []string{"virtio_net"}, []string{"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"}, ""},
		{"builtin skipped", []string{"tpm_crb", "ipmi_msghandler"}, []string{"kernel/drivers/char/ipmi/ipmi_msghandler.ko"}, ""},
		{"unknown", []string{"nosuch"}, nil, "nosuch is not in modules.dep"},
		{"cycle", []string{"a"}, nil, "dependency cycle"},
		{"empty names ignored", []string{"", " "}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := idx.Order(tt.mods, builtin)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"no colon here\n", ": kernel/a.ko\n", "kernel/a.txt:\n", "kernel/a.ko: notamodule\n", "kernel/a b.ko:\n"} {
		if _, err := Parse(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Parse(%q) = %v, want a line-1 error", in, err)
		}
	}
}

func TestSubsetRoundTrip(t *testing.T) {
	idx, err := Parse(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	files, err := idx.Order([]string{"nvme", "ipmi_si"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub := idx.Subset(files)
	idx2, err := Parse(strings.NewReader(sub))
	if err != nil {
		t.Fatal(err)
	}
	if len(idx2) != len(files) {
		t.Fatalf("subset has %d entries, want %d:\n%s", len(idx2), len(files), sub)
	}
	got, err := idx2.Order([]string{"nvme", "ipmi_si"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, files) {
		t.Fatalf("order from subset %q != %q", got, files)
	}
}

func TestParseBuiltin(t *testing.T) {
	set, err := ParseBuiltin(strings.NewReader("kernel/drivers/char/tpm/tpm_crb.ko\nkernel/drivers/pci/hotplug/pciehp.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !set["tpm_crb"] || !set["pciehp"] || len(set) != 2 {
		t.Fatalf("got %v", set)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(dep)
	f.Add("a.ko:\n")
	f.Add("# comment\n\nkernel/a.ko.zst: kernel/b.ko.zst\n")
	f.Fuzz(func(t *testing.T, s string) {
		idx, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		names := make([]string, 0, len(idx))
		for n := range idx {
			names = append(names, n)
		}
		files, err := idx.Order(names, nil)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, f := range files {
			if seen[f] {
				t.Fatalf("%s twice in %q", f, files)
			}
			seen[f] = true
		}
	})
}
