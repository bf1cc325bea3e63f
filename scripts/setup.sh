#!/usr/bin/env bash
# Sets up everything mdgpu needs on a fresh Debian 12 or 13 machine: system packages (when run as
# root), npm dependencies (which build the native addon), the TypeScript build, the host driver,
# and the guest kit (QEMU >= 10.1 with vfio-user-pci, a Linux guest kernel and its headers,
# busybox), cached outside the repository. Safe to run again: every step is skipped when already
# done. It needs nothing but the distribution's archive and the npm registry, and no npm
# configuration of the user's: the addon is built against this machine's Node headers
# (scripts/build-addon.js), never headers downloaded by node-gyp. test/setup/setup.test.ts runs it
# on a fresh Debian 13 root.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=0
# Install Debian packages that are missing (as root), or name them and stop.
install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} > 0)) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run as root, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ((apt_updated == 0)); then
    apt-get update -q
    apt_updated=1
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Node.js >= 20.19 and npm: Debian 13's own (nodejs 20.19) when there are none. Debian 12's nodejs
# is 18, too old: there, bring a Node >= 20.19 that ships its headers (packaged Nodes such as
# NodeSource's keep them in /usr/include/node, release tarballs in <prefix>/include/node).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then install_packages nodejs npm; fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "setup: Node.js >= 20.19 is needed, found $(node --version) (Debian 12's nodejs is 18: install a newer Node with its headers)" >&2
  exit 1
fi

# Debian packages the project uses on the host:
#  mmdebstrap        builds the guest kit (a Debian trixie + trixie-backports root)
#  g++ make python3  build the native addon (node-gyp); pkg-config finds the Vulkan and SPIR-V libraries
#  libnode-dev       Node's headers for the addon, where Debian splits them out of nodejs (below)
#  linux-libc-dev    <linux/vfio.h> for the addon's layout cross-check
#  xz-utils, zstd    unpack kernel modules for the guest initramfs
#  libvulkan-dev mesa-vulkan-drivers glslang-tools spirv-tools
#                    Vulkan compute on the host (lavapipe when there is no GPU), kernels as SPIR-V
#  e2fsprogs mount   the Debian guest image: mke2fs -d makes its ext4 disks, mount stacks the
#                    mdgpu packages' layer on the base root (overlayfs) to install them
PACKAGES=(mmdebstrap g++ make python3 pkg-config linux-libc-dev xz-utils zstd
          libvulkan-dev mesa-vulkan-drivers glslang-tools spirv-tools e2fsprogs mount)

# The addon is built against the headers under the running Node's prefix (scripts/build-addon.js).
# Debian's nodejs (12 and 13) ships them separately, in libnode-dev; other Nodes bring their own.
node_prefix=$(node -p 'require("path").resolve(process.execPath, "..", "..")')
if [[ ! -f $node_prefix/include/node/node_api.h ]]; then
  if [[ $node_prefix == /usr ]] && dpkg-query -S "$(readlink -f "$(command -v node)")" 2>/dev/null | grep -q '^nodejs:'; then
    PACKAGES+=(libnode-dev)
  else
    echo "setup: the Node at $node_prefix has no headers in $node_prefix/include/node; install a Node that ships them" >&2
    exit 1
  fi
fi
install_packages "${PACKAGES[@]}"

echo "setup: installing npm dependencies (builds the native addon)"
if [[ -f package-lock.json ]]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npx tap build >/dev/null 2>&1 || true   # tap rebuilds its plugin set from .taprc
echo "setup: compiling TypeScript"
npm run build
echo "setup: building the host driver (Vulkan compute) and the SPIR-V kernels"
make -s -C host-driver
echo "setup: guest kit"
node bin/mdgpu.js kit
