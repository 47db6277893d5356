"""The command that starts one execution environment laid out as Lambda lays out a function: the code zip at
/var/task, the layers at /opt, the runtime interface client at /var/runtime, the platform's EFS folder read-only at
the function's mount path, a private /tmp, and an interpreter that sees nothing else (`env -i`, `-S -s`: no
site-packages of the machine's Python, only what the function and its layers bring).

It runs in a private mount namespace (`unshare --mount`; as a user other than root, inside a user namespace too), so
nothing outside the environment sees these mounts and no privilege beyond that is needed. Sources are first bound into
a staging tmpfs on /dev/shm (Lambda has no /dev/shm either) and then moved into place, so that covering /var, /opt, /mnt
and /tmp never hides a source folder that lies under one of them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SCRIPT = r"""
set -eu
task=$1 opt=$2 runtime=$3 efs=$4 mount_path=$5 tmp=$6
shift 6
mount --make-rprivate / 2>/dev/null || true
mkdir -p /dev/shm
mount -t tmpfs -o size=16m,mode=755 ferry-stage /dev/shm
s=/dev/shm/stage
mkdir -p "$s/task" "$s/opt" "$s/runtime" "$s/efs" "$s/tmp"
ro() { mount --bind "$1" "$2"; mount -o remount,bind,ro "$2"; }
ro "$task" "$s/task"; ro "$opt" "$s/opt"; ro "$runtime" "$s/runtime"
[ -n "$efs" ] && ro "$efs" "$s/efs"
mount --bind "$tmp" "$s/tmp"
mount -t tmpfs -o mode=755 ferry-var /var
mkdir -p /var/task /var/runtime
mount --move "$s/task" /var/task
mount --move "$s/runtime" /var/runtime
mount --move "$s/opt" /opt
if [ -n "$efs" ]; then
  mount -t tmpfs -o mode=755 ferry-mnt /mnt
  mkdir -p "$mount_path"
  mount --move "$s/efs" "$mount_path"
fi
mount --move "$s/tmp" /tmp
# As on Lambda, only /tmp is writable: the root file system read-only, /dev/shm an empty read-only one.
umount /dev/shm
mount -t tmpfs -o ro,size=4k,mode=755 ferry-noshm /dev/shm
mount -o remount,bind,ro / 2>/dev/null || mount -o remount,ro / 2>/dev/null || true
cd /var/task
exec env -i "$@"
"""


@dataclass(frozen=True)
class Layout:
    task_root: Path          # the unpacked function zip
    opt: Path                # the unpacked layers
    runtime_dir: Path        # awslambdaric for this Python
    tmp: Path                # this environment's own /tmp
    efs_source: Path | None  # the local folder standing in for the file system, if the function mounts one
    mount_path: str          # where the function mounts it (FileSystemConfigs[].LocalMountPath)


def unshare_prefix() -> list[str]:
    # root may make a mount namespace directly; anyone else needs a user namespace to own it.
    return ["unshare", "--mount", "--propagation", "private"] if os.geteuid() == 0 else \
        ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]


def command(layout: Layout, python: str, handler: str, env: dict[str, str]) -> list[str]:
    """argv that runs `python -S -s -m awslambdaric <handler>` with exactly `env`, in the layout above."""
    assignments = [f"{k}={v}" for k, v in sorted(env.items())]
    return [*unshare_prefix(), "sh", "-c", SCRIPT, "ferry-lambda-sandbox",
            str(layout.task_root), str(layout.opt), str(layout.runtime_dir),
            str(layout.efs_source) if layout.efs_source else "", layout.mount_path, str(layout.tmp),
            *assignments, python, "-S", "-s", "-m", "awslambdaric", handler]
