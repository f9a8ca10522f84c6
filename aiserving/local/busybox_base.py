"""A busybox base image built from Debian's busybox-static, for modelcars without network access.

KServe's modelcar sidecar needs ``sh``, ``ln``, ``ls`` and ``sleep`` in the image; pulling
``busybox`` from Docker Hub is not possible on air-gapped build machines, so we assemble the
same rootfs from the static binary and push it with our own builder.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from serving_core.errors import NotFoundError

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


def find_busybox() -> Path:
    """The static busybox binary.

    Raises:
        NotFoundError: Debian's busybox-static is not installed.
    """
    for candidate in BUSYBOX_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise NotFoundError("busybox is not installed", hint="apt-get install busybox-static")


def busybox_rootfs(root: Path) -> Path:
    """A minimal rootfs: /bin/busybox plus a symlink per applet, /etc/passwd and /tmp."""
    busybox = find_busybox()
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (root / "tmp").mkdir()
    return root


def push_busybox_base(image: str, work_dir: Path, *, insecure: bool = True) -> str:
    """Build the busybox base and push it to ``image`` (registry or oci-layout:); return it pinned."""
    from oci_images.build import RegistryAccess, push_directory_image
    from oci_images.image import Platform
    from oci_images.layer import scan_tree
    from oci_images.reference import parse_reference

    rootfs = work_dir / "busybox-rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    busybox_rootfs(rootfs)
    result = push_directory_image(
        scan_tree(rootfs, prefix=""),
        parse_reference(image),
        base_image="scratch",
        platform=Platform("linux", "amd64"),
        cmd=["sh"],
        created_by="COPY busybox-static rootfs /",
        access=RegistryAccess(insecure=insecure),
    )
    return result.pinned
