# initramfs: the board image (u-root + podinit + boardd + modules + config).
#
#   make image [BOARD=emulated-ruggedpod] [IMAGE_COMPRESSION=auto]
#
# builds out/$(BOARD)/{initramfs.cpio.<ext>,vmlinuz,manifest.json}. The
# u-root base archive is built once and cached in out/cache.
# IMAGE_COMPRESSION: auto picks the fastest kernel unpack under TCG that
# keeps the image within 20 MB: lz4 (unpacks about as fast as an
# uncompressed archive: ~1 s for 36 MB), else zstd -10 (~2 s for 50 MB),
# else xz (5-8x slower); when none fits (a board with workloads: containerd,
# its shim and runc add ~70 MB uncompressed), lz4, the fastest to unpack.
# Measured by `make bench` (bench-boot rows).
IMAGE_COMPRESSION   ?= auto
# The persistent partition is ext4 (ext4 needs crc32c through the crypto
# API, a soft dependency modules.dep does not list); virtio_rng feeds the
# kernel's entropy pool on the emulated board.
IMAGE_EXTRA_MODULES ?= crc32c_generic,ext4,virtio_rng
IMAGE_FLAGS         ?=
IMAGE_DIR           := $(OUT)/$(BOARD)
# A board whose config has workloads ships containerd, its shim, runc and
# the workloads' oci-archive images (boardd/workloads/workloads.mk).
IMAGE_PREREQS       :=
IMAGE_WORKLOADS     :=
ifneq ($(shell grep -qs '^workloads:' board-configs/$(BOARD).yaml && echo yes),)
IMAGE_PREREQS       += containerd-bins demo-image
IMAGE_WORKLOADS     += -workloads-bin $(OUT)/bin -images $(OUT)/images
endif

.PHONY: image image-bare
image: deps $(IMAGE_PREREQS)
	@$(GO) run ./initramfs/cmd/mkimage -board $(BOARD) -compression $(IMAGE_COMPRESSION) \
	  -extra-modules $(IMAGE_EXTRA_MODULES) -out $(IMAGE_DIR) -cache $(OUT)/cache $(IMAGE_WORKLOADS) $(IMAGE_FLAGS)

# The baseline for benchmarks: the same kernel with a bare u-root initramfs.
image-bare: deps
	@$(GO) run ./initramfs/cmd/mkimage -bare -board bare-uroot -compression $(IMAGE_COMPRESSION) \
	  -out $(OUT)/bare-uroot -cache $(OUT)/cache

TEST_PREREQS += image
