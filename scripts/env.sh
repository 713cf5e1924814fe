# Shared paths and tool locations; sourced by the scripts (not executed).
# Every value can be overridden from the environment.
: "${IPVS_GUE_CACHE:=${XDG_CACHE_HOME:-$HOME/.cache}/ipvs-gue}"
: "${IPVS_GUE_TOOLS:=$IPVS_GUE_CACHE/tools}"
: "${BINDGEN_VERSION:=0.73.2}"
: "${BINDGEN:=$IPVS_GUE_TOOLS/bin/bindgen}"
: "${KERNEL_RUSTC:=/usr/bin/rustc}"
: "${LLVM_BIN:=/usr/lib/llvm-19/bin}"
: "${KERNEL_VERSION:=6.12}"
: "${KERNEL_TARBALL:=/usr/src/linux-source-$KERNEL_VERSION.tar.xz}"
: "${KERNEL_SRC_ROOT:=$IPVS_GUE_CACHE/src}"
export IPVS_GUE_CACHE IPVS_GUE_TOOLS BINDGEN_VERSION BINDGEN KERNEL_RUSTC LLVM_BIN KERNEL_VERSION \
  KERNEL_TARBALL KERNEL_SRC_ROOT
# The host tools the guest runs from the host's /usr, shared over virtio-9p (scripts/setup installs
# and checks them; qemu/build-initramfs checks them): iproute2, ipvsadm, iperf3, ethtool, socat, jq,
# tcpdump, python3 for the kernel's ynl client (tools/net/ynl/cli.py), and keepalived for the
# recipe docs/operations.md gives (tests/guest/e2e.sh runs it).
GUEST_HOST_TOOLS=(ip ipvsadm iperf3 ethtool socat jq tcpdump python3 keepalived)
# The make variables every kernel and module build needs (see docs/building.md).
KMAKE_VARS=(LLVM="$LLVM_BIN/" RUSTC="$KERNEL_RUSTC" BINDGEN="$BINDGEN")
