# ipvs-gue: Rust GUE transmit for IPVS, and the QEMU harness that proves it.
#   make               build ipvs_gue.ko (sets up the host and builds the guest kernel if needed)
#   make demo          the headline story: bug build vs fixed build vs C path, 16 MiB uploads
#   make test          unit tests, QEMU smoke test, e2e matrix; ends with "N passed, N failed"
#   make test-debug    every suite on the debug kernel (KASAN, lockdep, kmemleak...), splats fail
#   make test-upstream the harness against a kernel with the C fix reverted (test-only kernel)
#   make test-scaleout two directors behind ECMP (IPVS mh), one lost mid-upload (docs/scale-out.md)
#   make bench         benchmark matrix: Rust module vs C IPVS GUE vs plain DR (docs/benchmark.md)
# KDIR=<kernel build dir> builds the module against another configured CONFIG_RUST=y tree.

.PHONY: all module module-bug setup kernel unit tools initramfs test test-debug smoke e2e test-upstream test-scaleout demo bench clean

all: module

module:
	@scripts/build-module >/dev/null

module-bug:
	@scripts/build-module --bug >/dev/null

setup:
	@scripts/setup

kernel:
	@scripts/build-kernel stock

unit:
	@scripts/unit-tests

tools:
	@scripts/build-tools

test:
	@scripts/test

test-debug:
	@scripts/test --debug

smoke:
	@scripts/test --only smoke

e2e:
	@scripts/test --only e2e

test-upstream:
	@scripts/test-upstream

test-scaleout:
	@scripts/test --only scaleout

demo:
	@scripts/demo

bench:
	@scripts/bench

clean:
	rm -rf target src/generated *.o *.ko *.mod *.mod.c .*.cmd src/.*.cmd src/*.o src/bindings/*.o \
		src/bindings/.*.cmd modules.order Module.symvers .module-common.o
