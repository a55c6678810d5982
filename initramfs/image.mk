# initramfs: the board image (u-root + podinit + boardd + modules + config).
#
#   make image [BOARD=emulated-ruggedpod] [IMAGE_COMPRESSION=lz4]
#
# builds out/$(BOARD)/{initramfs.cpio.<ext>,vmlinuz,manifest.json}. The
# u-root base archive is built once and cached in out/cache.
# IMAGE_COMPRESSION: lz4 unpacks fastest under TCG within the 20 MB budget
# (measured by `make bench`, rows image-*); zstd/xz when the image grows.
IMAGE_COMPRESSION   ?= lz4
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
