#!/bin/sh
# single-vm.sh: one q35 guest with one mdgpu device attached over vfio-user.
#
# Start the mdgpu server first: QEMU connects to its socket while it starts and exits
# if nobody is listening (there is no reconnect). See README.md for why each option is here.
#
# Environment (all optional except INITRD):
#   KIT      guest kit directory (default: `node bin/mdgpu.js kit --root`, which builds
#            the kit first if it is missing; that needs root)
#   QEMU     a qemu-system-x86_64 >= 10.1 to use instead of the kit's
#   SOCKET   the mdgpu server's vfio-user socket (default /run/mdgpu/mdgpu0.sock);
#            set it empty to boot without the device
#   ACCEL    tcg (default, always works) or kvm
#   MEM      guest RAM in MiB (default 1024)
#   SMP      vCPUs (default 2)
#   KERNEL   guest kernel (default: the kit's vmlinuz)
#   INITRD   guest initramfs (required; e.g. one made with guestInitramfs() from src/kit)
#   APPEND   kernel command line (default: serial console, exit QEMU on panic)
# Further arguments go to QEMU unchanged, e.g. `-d guest_errors` or `-s` for gdb.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
KIT=${KIT:-$(node "$here/../bin/mdgpu.js" kit --root)}
SOCKET=${SOCKET-/run/mdgpu/mdgpu0.sock}
ACCEL=${ACCEL:-tcg}
MEM=${MEM:-1024}
SMP=${SMP:-2}
KERNEL=${KERNEL:-$(ls "$KIT"/boot/vmlinuz-* | tail -n 1)}
: "${INITRD:?set INITRD to a guest initramfs}"
APPEND=${APPEND:-console=ttyS0 panic=-1 no_timer_check}

case "$ACCEL" in
tcg) cpu= ;;
kvm) cpu="-cpu host" ;;   # only where /proc/cpuinfo has vmx/svm and a guest really boots
*) echo "ACCEL must be tcg or kvm, not $ACCEL" >&2; exit 2 ;;
esac

# Guest devices, built up in "$@" after the caller's extra arguments.
#
# One PCIe root port per device, at a pinned slot (-nodefaults moves default addresses).
set -- "$@" -device pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=0x10.0
if [ -n "$SOCKET" ]; then
	# vfio-user-pci takes its socket only in the JSON form of -device.
	set -- "$@" -device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$SOCKET\",\"type\":\"unix\"},\"bus\":\"rp0\",\"addr\":\"0\",\"id\":\"mdgpu0\"}"
fi

if [ -n "${QEMU:-}" ]; then
	set -- "$QEMU" "$@"
else
	# The kit's QEMU runs from the host with the kit's own loader and libraries (no chroot);
	# -L points at its firmware (SeaBIOS, option ROMs), QEMU_MODULE_DIR at its modules.
	export QEMU_MODULE_DIR="$KIT/usr/lib/x86_64-linux-gnu/qemu"
	set -- "$KIT/lib64/ld-linux-x86-64.so.2" \
		--library-path "$KIT/usr/lib/x86_64-linux-gnu:$KIT/lib/x86_64-linux-gnu" \
		"$KIT/usr/bin/qemu-system-x86_64" \
		-L "$KIT/usr/share/qemu" -L "$KIT/usr/share/seabios" -L "$KIT/usr/lib/ipxe/qemu" \
		"$@"
fi

# shellcheck disable=SC2086 # $cpu is empty or two words on purpose
exec "$@" \
	-machine q35,memory-backend=mem -accel "$ACCEL" $cpu \
	-m "${MEM}M" -smp "$SMP" \
	-object "memory-backend-memfd,id=mem,size=${MEM}M,share=on" \
	-nodefaults -display none -no-reboot -nic none \
	-serial stdio \
	-kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
