# initramfs: the board image (u-root + podinit + boardd + modules + config).
#
#   make image [BOARD=emulated-ruggedpod] [IMAGE_COMPRESSION=lz4]
#
# builds out/$(BOARD)/{initramfs.cpio.<ext>,vmlinuz,manifest.json}. The
# u-root base archive is built once and cached in out/cache.
# IMAGE_COMPRESSION (make bench measures it: bench-boot rows): under TCG
# the kernel unpacks lz4 about as fast as an uncompressed archive (0.6 s
# for 28 MB) and zstd/gzip/xz 3-8x slower, but with boardd at 27 MB lz4
# no longer fits the 20 MB budget (21.7 MB) while zstd -10 does (16.3 MB):
# zstd is the fastest boot within the budget. lz4 when boardd shrinks.
IMAGE_COMPRESSION   ?= zstd
# The persistent partition is ext4 (ext4 needs crc32c through the crypto
# API, a soft dependency modules.dep does not list); virtio_rng feeds the
# kernel's entropy pool on the emulated board.
IMAGE_EXTRA_MODULES ?= crc32c_generic,ext4,virtio_rng
IMAGE_FLAGS         ?=
IMAGE_DIR           := $(OUT)/$(BOARD)

.PHONY: image image-bare
image: deps
	$(GO) run ./initramfs/cmd/mkimage -board $(BOARD) -compression $(IMAGE_COMPRESSION) \
	  -extra-modules $(IMAGE_EXTRA_MODULES) -out $(IMAGE_DIR) -cache $(OUT)/cache $(IMAGE_FLAGS)

# The baseline for benchmarks: the same kernel with a bare u-root initramfs.
image-bare: deps
	$(GO) run ./initramfs/cmd/mkimage -bare -board bare-uroot -compression $(IMAGE_COMPRESSION) \
	  -out $(OUT)/bare-uroot -cache $(OUT)/cache

TEST_PREREQS += image
