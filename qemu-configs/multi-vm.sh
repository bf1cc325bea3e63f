#!/bin/sh
# multi-vm.sh: one mdgpu daemon serving N vGPUs, and N guests, each with its own vGPU.
#
# The daemon multiplexes one host compute device (Vulkan; lavapipe without a GPU) among the VMs
# with weighted fair scheduling; every VM has its own socket, device memory and quota. Each
# guest is started with single-vm.sh, pointed at its own socket. Watch the daemon with
#   node bin/mdgpu.js status
#
# Environment:
#   N        number of VMs (default 2)
#   WEIGHTS  comma-separated scheduling weights (default 1 for each)
#   APERTURE device memory per vGPU (default 256M); QUOTA what each VM may allocate (default 128M)
#   INITRD   guest initramfs (required), passed on to single-vm.sh with KIT, ACCEL, MEM, SMP, ...
#   RUNDIR   where the sockets go (default /run/mdgpu)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
N=${N:-2}
WEIGHTS=${WEIGHTS:-}
APERTURE=${APERTURE:-256M}
QUOTA=${QUOTA:-128M}
RUNDIR=${RUNDIR:-/run/mdgpu}
: "${INITRD:?set INITRD to a guest initramfs}"
mkdir -p "$RUNDIR"

# The daemon must be listening before any QEMU starts: QEMU connects once, at device realize.
set --
i=1
while [ "$i" -le "$N" ]; do
	w=$(echo "$WEIGHTS" | cut -d, -f"$i")
	set -- "$@" --vgpu "socket=$RUNDIR/vm$i.sock,name=vm$i,aperture=$APERTURE,quota=$QUOTA${w:+,weight=$w}"
	i=$((i + 1))
done
node "$here/../bin/mdgpu.js" serve "$@" --control "$RUNDIR/control.sock" &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT INT TERM
i=1
while [ ! -S "$RUNDIR/vm$N.sock" ]; do
	kill -0 "$daemon" || exit 1
	sleep 0.1
done

# One QEMU per VM, each on its own vGPU socket; their consoles go to vmN.log.
pids=
i=1
while [ "$i" -le "$N" ]; do
	SOCKET="$RUNDIR/vm$i.sock" "$here/single-vm.sh" >"$RUNDIR/vm$i.log" 2>&1 &
	pids="$pids $!"
	i=$((i + 1))
done
echo "mdgpu: $N guests running; consoles in $RUNDIR/vm*.log; status: node bin/mdgpu.js status --control $RUNDIR/control.sock"
# shellcheck disable=SC2086
wait $pids
