#!/usr/bin/env bash
# Sets up everything mdgpu needs on a fresh Debian 12 or 13 machine: system packages (when run as
# root), npm dependencies (which build the native addon), the TypeScript build, and the guest kit
# (QEMU >= 10.1 with vfio-user-pci, a Linux guest kernel and its headers, busybox), cached outside
# the repository. Safe to run again: every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the project uses on the host:
#  mmdebstrap        builds the guest kit (a Debian trixie + trixie-backports root)
#  g++ make python3  build the native addon (node-gyp); pkg-config finds the Vulkan and SPIR-V libraries
#  linux-libc-dev    <linux/vfio.h> for the addon's layout cross-check
#  xz-utils, zstd    unpack kernel modules for the guest initramfs
#  libvulkan-dev mesa-vulkan-drivers glslang-tools spirv-tools
#                    Vulkan compute on the host (lavapipe when there is no GPU), kernels as SPIR-V
#  e2fsprogs mount   the Debian guest image: mke2fs -d makes its ext4 disks, mount stacks the
#                    mdgpu packages' layer on the base root (overlayfs) to install them
#  systemd           systemd-socket-activate and systemd-analyze test contrib/systemd/ (no
#                    running systemd needed)
PACKAGES=(mmdebstrap g++ make python3 pkg-config linux-libc-dev xz-utils zstd
          libvulkan-dev mesa-vulkan-drivers glslang-tools spirv-tools e2fsprogs mount systemd)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
  echo "setup: Node.js >= 20.19 is needed, found $(node --version)" >&2
  exit 1
fi

echo "setup: installing npm dependencies (builds the native addon)"
if [[ -f package-lock.json ]]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npx tap build >/dev/null 2>&1 || true   # tap rebuilds its plugin set from .taprc
echo "setup: compiling TypeScript"
npm run build
echo "setup: building the host driver (Vulkan compute) and the SPIR-V kernels"
make -s -C host-driver
echo "setup: guest kit"
node bin/mdgpu.js kit
