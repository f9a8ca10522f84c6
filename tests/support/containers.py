"""Build the images in images/ offline and run containers, with Debian's buildah and podman.

No container registry is reachable on the test machines, so the Python base image is made from Debian's
packages: debootstrap lays out a bookworm rootfs with Debian's python3, podman imports it, and the
Dockerfiles get it as their PYTHON_IMAGE build argument. pip inside the build reaches PyPI the way the
host's pip does (the host's pip settings, CA bundle and local wheel directories are mounted in).

Everything persists under one cache directory (``$AISERVING_CONTAINER_CACHE``, default
``~/.cache/aiserving/containers``): the image store (shared by buildah and podman; see
:func:`storage_driver`), pip's cache, and so the base image and each Dockerfile's layers. A second run
finds the base by its key (suite, mirror, packages) and ``buildah bud --layers`` reuses every layer whose
instruction and inputs did not change.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = REPO_ROOT / "images"
CONTAINERS_CONF = Path(__file__).with_name("containers.conf")

# The offline stand-in for python:3.11-slim-bookworm: Debian bookworm's own python3 (3.11).
BASE_SUITE = "bookworm"
BASE_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_REPOSITORY = "localhost/aiserving/python-base"

# pip settings that decide where packages come from; the build's pip gets the host's values.
PIP_SOURCE_SETTINGS = (
    "cert",
    "client-cert",
    "constraint",
    "find-links",
    "index-url",
    "extra-index-url",
    "trusted-host",
)
PIP_SETTINGS = (*PIP_SOURCE_SETTINGS, "default-timeout", "proxy")
# `podman container cleanup` (conmon's exit command) refuses a longer --runroot.
PODMAN_RUNROOT_LIMIT = 50
# Background builds yield the CPU to the tests that run meanwhile.
BACKGROUND_NICENESS = 19
# Free space a cold build needs on the store's file system: buildah writes a RUN step's files once in the
# build container and once more in the layer it commits, so the components image's 3.5 GB dependency layer
# briefly takes twice that. A shortfall fails before the build starts, not 20 minutes into it.
BUILD_FREE_SPACE_GIB = {"components": 10.0}
DEFAULT_BUILD_FREE_SPACE_GIB = 3.0
GIB = 1024**3


def cache_root() -> Path:
    """Where the image store and build caches live between test runs."""
    configured = os.environ.get("AISERVING_CONTAINER_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "aiserving" / "containers"


def storage_driver(root: Path) -> str:
    """``$AISERVING_CONTAINER_STORAGE_DRIVER``, else overlay, or vfs where the cache is itself on overlayfs.

    overlay shares layers between images and containers, so a container of the multi-GB components image
    starts at once; vfs copies every layer for every container and commit, but works anywhere (an
    overlay mount cannot sit on overlayfs, as in a container without fuse-overlayfs).
    """
    if configured := os.environ.get("AISERVING_CONTAINER_STORAGE_DRIVER"):
        return configured
    filesystem = subprocess.run(
        ["stat", "--file-system", "--format=%T", str(root)], capture_output=True, text=True, check=True
    ).stdout.strip()
    return "vfs" if filesystem == "overlayfs" else "overlay"


def runroot_for(store: Path) -> Path:
    """A short run-state directory of its own for each image store.

    conmon hands the runroot to ``podman container cleanup`` when a container exits, and podman 4.3 refuses
    a runroot longer than 50 characters there: the container then stays "stopped", never "exited", and every
    ``podman wait`` (so every Docker API wait and log follow, hence every DockerRunner task) hangs for its
    20 s conmon timeout. A runroot under ``~/.cache/...`` is easily longer.
    """
    key = hashlib.sha256(str(store).encode()).hexdigest()[:12]
    runroot = Path(tempfile.gettempdir()) / f"aiserving-run-{key}"
    if len(str(runroot)) > PODMAN_RUNROOT_LIMIT:
        raise ContainerError(
            f"podman's runroot {runroot} is longer than {PODMAN_RUNROOT_LIMIT} characters, which podman refuses"
            " when it cleans up an exited container: set TMPDIR to a shorter directory"
        )
    return runroot


@contextlib.contextmanager
def file_lock(path: Path, operation: int) -> Iterator[None]:
    """Hold ``flock(operation)`` on ``path`` (shared, exclusive, or with ``LOCK_NB`` raising
    ``BlockingIOError`` when taken); the lock goes with the file when the block ends."""
    with path.open("w") as lock:
        fcntl.flock(lock, operation)
        yield


@dataclass(frozen=True)
class BuildResult:
    """An image built from a Dockerfile: its tag, image id and how long the build took."""

    tag: str
    image_id: str
    seconds: float


class ContainerError(AssertionError):
    """A buildah or podman command failed (the message holds its command and output tail)."""


class ContainerTools:
    """buildah and podman on one image store of ours, configured by our own files (run at ``niceness``)."""

    def __init__(self, root: Path | None = None, *, niceness: int = 0) -> None:
        self.niceness = niceness
        self.root = (root or cache_root()).absolute()
        self.root.mkdir(parents=True, exist_ok=True)
        self.driver = storage_driver(self.root)
        store = self.root / f"storage-{self.driver}"
        self.storage_conf = self.root / f"storage-{self.driver}.conf"
        # Generated, not committed: the store's paths depend on the cache directory.
        self.storage_conf.write_text(
            f'[storage]\ndriver = "{self.driver}"\ngraphroot = "{store}"\nrunroot = "{runroot_for(store)}"\n'
        )
        self.pip_cache = self.root / "pip-cache"
        self.pip_cache.mkdir(exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        """The environment for buildah, podman and the podman API service."""
        return {
            **os.environ,
            "CONTAINERS_CONF": str(CONTAINERS_CONF),
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
        }

    def run(
        self, tool: str, *args: str, timeout_s: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tool args``; with ``check`` a non-zero exit raises :class:`ContainerError` with the output tail."""
        niced = ["nice", "-n", str(self.niceness)] if self.niceness else []
        result = subprocess.run(
            [*niced, tool, *args], capture_output=True, text=True, env=self.env, timeout=timeout_s, check=False
        )
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr)[-4000:]
            raise ContainerError(f"{tool} {' '.join(args)} exited with {result.returncode}:\n{output}")
        return result

    def image_id(self, reference: str) -> str | None:
        """The id of a local image, or None when the store does not hold it."""
        found = self.run("podman", "image", "inspect", "--format", "{{.Id}}", reference, check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    def _locked(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Serialize builds of one image across concurrent test runs sharing the cache."""
        return file_lock(self.root / f"{name}.lock", fcntl.LOCK_EX)

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Hold the store's lock shared while buildah builds, so that no prune runs meanwhile.

        podman counts the layer a build has just committed, not yet built on or tagged, as a dangling
        image: a prune from a concurrent build (the background builds run beside the tests' own) removes it
        and the build fails with "layer not known". Builds share the lock with each other; :meth:`prune`
        takes it alone.
        """
        with file_lock(self.root / "store.lock", fcntl.LOCK_SH):
            yield

    def python_base(self) -> str:
        """The offline Python base image (Debian bookworm + python3), built once per key and then reused."""
        key = hashlib.sha256(json.dumps([BASE_SUITE, BASE_MIRROR, BASE_PACKAGES]).encode()).hexdigest()[:16]
        reference = f"{BASE_REPOSITORY}:{key}"
        with self._locked("python-base"):
            if self.image_id(reference) is None:
                self._debootstrap_and_import(reference)
        return reference

    def _debootstrap_and_import(self, reference: str) -> None:
        with tempfile.TemporaryDirectory(dir=self.root, prefix="rootfs-") as scratch:
            rootfs = Path(scratch) / "rootfs"
            self._check_call(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    BASE_SUITE,
                    str(rootfs),
                    BASE_MIRROR,
                ],
                timeout_s=900,
            )
            # Downloaded .debs and package lists are build leftovers, not part of the image.
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            archive = Path(scratch) / "rootfs.tar"
            self._check_call(
                ["tar", "--sort=name", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."], timeout_s=600
            )
            self.run("podman", "import", "--change", 'CMD ["/usr/bin/python3"]', str(archive), reference)

    def _check_call(self, command: list[str], *, timeout_s: float) -> None:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        if result.returncode != 0:
            raise ContainerError(
                f"{command[0]} exited with {result.returncode}:\n{(result.stdout + result.stderr)[-4000:]}"
            )

    def build(
        self,
        dockerfile: Path,
        tag: str,
        *,
        context: Path = REPO_ROOT,
        build_args: dict[str, str] | None = None,
        free_space_gib: float = DEFAULT_BUILD_FREE_SPACE_GIB,
        timeout_s: float = 3600,
    ) -> BuildResult:
        """Build one Dockerfile into our store (no pulls), or find the image built from the same inputs.

        The inputs are the Dockerfile, the build arguments and every file its ``COPY`` lines take from
        the context: an image tagged with their hash is used as it is, without running buildah (whose own
        layer cache still has to hash multi-GB layers to find out that nothing changed). Otherwise
        ``buildah bud --layers`` rebuilds, reusing the layers whose inputs did not change. A build first
        checks that ``free_space_gib`` is free, and afterwards drops what older builds left in the store.
        """
        started = time.monotonic()
        inputs = inputs_key(dockerfile, context, build_args or {}, host_pip_settings())
        keyed = f"{tag.rsplit(':', 1)[0]}:inputs-{inputs}"
        with self._locked(dockerfile.parent.name):
            if self.image_id(keyed) is None:
                self._require_free_space(keyed, free_space_gib)
                self._buildah_bud(dockerfile, keyed, context, build_args or {}, timeout_s)
                self._remove_older_builds(keyed)
            self.run("podman", "tag", keyed, tag)
        image_id = self.image_id(tag)
        assert image_id is not None, f"{tag} is not in the store after the build"
        return BuildResult(tag, image_id, time.monotonic() - started)

    def _require_free_space(self, tag: str, needed_gib: float) -> None:
        """Fail with the figures and the fix when the store's file system lacks room to build ``tag``, after
        dropping what older builds left there."""
        if shutil.disk_usage(self.root).free >= needed_gib * GIB:
            return
        self.prune()
        free_gib = shutil.disk_usage(self.root).free / GIB
        if free_gib < needed_gib:
            raise ContainerError(
                f"building {tag} needs about {needed_gib:.0f} GiB free on the file system of {self.root}; "
                f"{free_gib:.1f} GiB are free. Free space there, or set AISERVING_CONTAINER_CACHE to a "
                "directory on a larger disk."
            )

    def _remove_older_builds(self, keyed: str) -> None:
        """Untag the builds of this repository from other inputs, so that the store does not grow with every
        source change, and prune what that leaves: their own top layers go; layers the new build shares, and
        the cached intermediate images of the builds still tagged, stay. While another build runs the prune
        is left to a later build: waiting could take as long as that build."""
        repository, _, current = keyed.rpartition(":")
        listed = self.run("podman", "images", "--format", "{{.Tag}}", "--filter", f"reference={repository}")
        for older in set(listed.stdout.split()) - {current}:
            if older.startswith("inputs-"):
                self.run("podman", "rmi", f"{repository}:{older}", check=False)
        self.prune(wait=False)

    def prune(self, *, wait: bool = True) -> bool:
        """Remove dangling images: untagged ones that no tagged image builds on (older builds' layers).

        Pruning waits until no build runs on the store (see :meth:`building`); without ``wait`` it is
        skipped while one does, and False is returned.
        """
        try:
            with file_lock(self.root / "store.lock", fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB):
                self.run("podman", "image", "prune", "--force", timeout_s=1800)
        except BlockingIOError:
            return False
        return True

    def _buildah_bud(
        self, dockerfile: Path, tag: str, context: Path, build_args: dict[str, str], timeout_s: float
    ) -> None:
        arguments = [f"--build-arg={name}={value}" for name, value in build_args.items()]
        volumes = [
            f"--volume={self.pip_cache}:/root/.cache/pip",
            *(f"--volume={mount}" for mount in self._pip_mounts()),
        ]
        with self.building():
            self.run(
                "buildah",
                "bud",
                "--layers",
                "--isolation=chroot",
                "--pull=never",
                *arguments,
                *volumes,
                "--file",
                str(dockerfile),
                "--tag",
                tag,
                str(context),
                timeout_s=timeout_s,
            )

    def _pip_mounts(self) -> list[str]:
        """The host's pip settings as /etc/pip.conf, plus the files and directories they name (read-only)."""
        settings = host_pip_settings()
        pip_conf = self.root / "pip.conf"
        pip_conf.write_text("[global]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()))
        mounts = {f"{pip_conf}:/etc/pip.conf:ro"}
        for key, value in settings.items():
            if key not in PIP_SOURCE_SETTINGS:
                continue
            for word in value.split():
                path = Path(word.removeprefix("file://"))
                if not path.is_absolute() or not path.exists():
                    continue
                # A file:// simple index keeps its files beside it (../files/...): mount its parent.
                mounted = path.parent if word.startswith("file://") else path
                mounts.add(f"{mounted}:{mounted}:ro")
        return sorted(mounts)


def host_pip_settings() -> dict[str, str]:
    """The pip settings (files and PIP_* variables) that decide where the host's pip gets packages."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    settings: dict[str, str] = {}
    for line in listed.splitlines():
        name, _, quoted = line.partition("=")
        key = name.rpartition(".")[2]
        if key in PIP_SETTINGS:
            # Later lines win: pip lists files from general to specific, then the environment.
            settings[key] = quoted.strip().strip("'\"")
    return settings


def inputs_key(dockerfile: Path, context: Path, build_args: dict[str, str], pip_settings: dict[str, str]) -> str:
    """A hash of the Dockerfile, its build arguments, the pip settings the build gets and the context files
    its ``COPY`` lines take.

    The pip settings decide which packages the build installs (another index or wheel directory can give
    another torch), so they are inputs too. Bytecode and caches are left out, as ``.dockerignore`` leaves
    them out of the build.
    """
    digest = hashlib.sha256(dockerfile.read_bytes())
    digest.update(json.dumps([sorted(build_args.items()), sorted(pip_settings.items())]).encode())
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(word.startswith("--from") for word in words):
            continue
        for source in words[1:-1]:
            if source.startswith("--"):
                continue
            root = context / source
            files = sorted(root.rglob("*")) if root.is_dir() else [root]
            for path in files:
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    digest.update(f"{path.relative_to(context)}\0{path.stat().st_mode:o}\0".encode())
                    digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def build_image(tools: ContainerTools, name: str, tag: str, dockerfile: str = "Dockerfile") -> BuildResult:
    """Build ``images/NAME/DOCKERFILE`` on the offline Python base."""
    return tools.build(
        IMAGES / name / dockerfile,
        tag,
        build_args={"PYTHON_IMAGE": tools.python_base()},
        free_space_gib=BUILD_FREE_SPACE_GIB.get(name, DEFAULT_BUILD_FREE_SPACE_GIB),
    )


def build_in_background(images: dict[str, str]) -> dict[str, Future[BuildResult]]:
    """Start building each ``images/NAME`` (name -> tag, in order) in a thread, at low CPU priority.

    The tests that run an image wait on its future; the rest of the suite runs meanwhile and keeps the
    CPU first, so a cold build (minutes of pip and layer commits) mostly fills time the suite spends
    waiting. The thread is a daemon: a test run that ends early does not wait for the builds.
    """
    futures: dict[str, Future[BuildResult]] = {name: Future() for name in images}

    def build() -> None:
        tools = ContainerTools(niceness=BACKGROUND_NICENESS)
        for name, tag in images.items():
            try:
                futures[name].set_result(build_image(tools, name, tag))
            except BaseException as error:  # handed to whoever waits on the build
                futures[name].set_exception(error)

    threading.Thread(target=build, name="image-builds", daemon=True).start()
    return futures


def copy_tree(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` with files readable by any user (the containers run as UID 1000)."""
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target
