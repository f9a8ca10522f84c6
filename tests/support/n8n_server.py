"""A real n8n for the workflow tests: installed once into a cache, started once per test session.

The n8n version and the Node 22 it needs (``isolated-vm`` 6 refuses older Node) are pinned by
``tests/support/n8n/package.json`` and its lock file. The install lives under
``~/.cache/aiserving/n8n/<hash of both files>``, so a changed pin installs afresh and an unchanged one
is reused (a cold install is about 750 MB and several minutes). Install scripts are skipped and only
the two native modules n8n loads are built, with that Node first on ``PATH``: ``sqlite3`` (its
database) and ``isolated-vm`` (its expression sandbox).

``python -m tests.support.n8n_server`` installs it ahead of the tests (``make n8n-runtime``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Self

from serving_core.errors import NotFoundError, OperationTimeoutError, RemoteServiceError
from serving_core.processes import LocalProcess, launch, listening_ports, log_tail, wait_for, wait_ready

PACKAGE_DIR = Path(__file__).resolve().parent / "n8n"
PACKAGE_FILES = ("package.json", "package-lock.json")
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aiserving" / "n8n"
# The native modules n8n needs at run time; the other install scripts (oracledb, ssh2, ...) serve nodes we do not run.
NATIVE_MODULES = ("sqlite3", "isolated-vm")
INSTALL_TIMEOUT_S = 1800.0
CLI_TIMEOUT_S = 180.0
START_TIMEOUT_S = 180.0
# Printed once every active workflow's webhooks are registered; healthz answers earlier than that.
_READY_LINE = re.compile(r"Editor is now accessible via")
# n8n settings for a quiet, local, offline instance; the caller adds the workflows' own variables.
_QUIET_SETTINGS = {
    "N8N_LISTEN_ADDRESS": "127.0.0.1",
    "DB_TYPE": "sqlite",
    "N8N_DIAGNOSTICS_ENABLED": "false",
    "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
    "N8N_PERSONALIZATION_ENABLED": "false",
    "N8N_TEMPLATES_ENABLED": "false",
    "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
    "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
    # Nothing runs between tests: stop at once rather than after the default 30 s.
    "N8N_GRACEFUL_SHUTDOWN_TIMEOUT": "5",
    # Our workflows use no Code node, so no task runner (and no runner broker port) is needed.
    "N8N_RUNNERS_ENABLED": "false",
    # The workflows read their settings from $env, as docs/n8n.md tells users to allow.
    "N8N_BLOCK_ENV_ACCESS_IN_NODE": "false",
}


def install_key() -> str:
    """A hash of the pinned package files: a new pin gets a new install folder."""
    digest = hashlib.sha256()
    for name in PACKAGE_FILES:
        digest.update((PACKAGE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def install_dir() -> Path:
    """Where the install for the current pins lives (complete once its ``.installed`` marker exists)."""
    return CACHE_ROOT / install_key()


def _bin_dir(root: Path) -> Path:
    return root / "node_modules" / ".bin"


def _run(command: list[str], *, cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float) -> None:
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise OperationTimeoutError(f"`{' '.join(command)}` ran past {timeout_s:g} s") from error
    if result.returncode != 0:
        raise RemoteServiceError(
            f"`{' '.join(command)}` exited with code {result.returncode}:\n{log_tail(log_path)}",
            hint=f"see {log_path}",
        )


def _remove_abandoned_installs(target: Path) -> None:
    """Delete half-built installs whose installing process is gone (killed mid-install); each is large."""
    for building in target.parent.glob(f"{target.name}.building-*"):
        pid = int(building.name.rsplit("-", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(building, ignore_errors=True)
        except PermissionError:  # alive, another user's
            continue


def _install_into(folder: Path, npm: str, log_path: Path) -> None:
    for name in PACKAGE_FILES:
        shutil.copy2(PACKAGE_DIR / name, folder / name)
    env = {**os.environ, "npm_config_audit": "false", "npm_config_fund": "false", "npm_config_update_notifier": "false"}
    _run([npm, "ci", "--ignore-scripts"], cwd=folder, env=env, log_path=log_path, timeout_s=INSTALL_TIMEOUT_S)
    # With the pinned Node first on PATH, the native modules are built for its ABI.
    node_env = {**env, "PATH": f"{_bin_dir(folder)}{os.pathsep}{env.get('PATH', '')}"}
    _run([npm, "rebuild", *NATIVE_MODULES], cwd=folder, env=node_env, log_path=log_path, timeout_s=INSTALL_TIMEOUT_S)


def ensure_installed() -> Path:
    """Install the pinned n8n into the cache unless it is there; returns the install folder.

    npm's output goes to ``<install folder>.log`` beside it.

    The install is built in a folder of its own and renamed into place, so an interrupted install never
    looks complete and two sessions installing at once do not mix their files.

    Raises:
        NotFoundError: npm is not on PATH.
        RemoteServiceError: npm failed (the log tail says why, typically the registry is unreachable).
    """
    target = install_dir()
    if (target / ".installed").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise NotFoundError("npm is not on PATH", hint="install it: `make system-deps` (Debian package npm)")
    log_path = target.with_name(f"{target.name}.log")
    _remove_abandoned_installs(target)
    building = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        _install_into(building, npm, log_path)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    (building / ".installed").write_text(install_key() + "\n")
    try:
        building.rename(target)
    except OSError:  # another session finished first: keep its install
        shutil.rmtree(building, ignore_errors=True)
    return target


class N8nServer(LocalProcess):
    """n8n on 127.0.0.1 with workflows imported and activated before it starts.

    Args:
        install: an :func:`ensure_installed` folder.
        workdir: an empty folder for n8n's user folder (database, settings) and its log.
        workflows: workflow JSON files as users import them.
        credentials: credentials the workflows name, as ``n8n import:credentials`` reads them
            (``data`` in clear; n8n encrypts it on import).
        env: variables the workflows read with ``$env``.
    """

    stop_grace_s = 20.0

    def __init__(
        self,
        install: Path,
        workdir: Path,
        *,
        workflows: list[Path],
        credentials: list[dict[str, Any]],
        env: dict[str, str],
    ) -> None:
        self.workdir = workdir
        self.log_path = workdir / "n8n.log"
        self._n8n = str(_bin_dir(install) / "n8n")
        self._workflows = workflows
        self._credentials = credentials
        self._env = {
            **os.environ,
            **_QUIET_SETTINGS,
            **env,
            "PATH": f"{_bin_dir(install)}{os.pathsep}{os.environ.get('PATH', '')}",
            "N8N_USER_FOLDER": str(workdir / "home"),
            "N8N_ENCRYPTION_KEY": "aiserving-tests-only",
            # The kernel picks the port; it is read back from the listening socket.
            "N8N_PORT": "0",
        }
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self.port}"

    def _cli(self, *args: str) -> None:
        _run([self._n8n, *args], cwd=self.workdir, env=self._env, log_path=self.log_path, timeout_s=CLI_TIMEOUT_S)

    def _import(self) -> None:
        imports = self.workdir / "import"
        (imports / "workflows").mkdir(parents=True)
        for workflow in self._workflows:
            shutil.copy2(workflow, imports / "workflows" / workflow.name)
        (imports / "credentials.json").write_text(json.dumps(self._credentials))
        self._cli("import:credentials", f"--input={imports / 'credentials.json'}")
        self._cli("import:workflow", "--separate", f"--input={imports / 'workflows'}")
        self._cli("update:workflow", "--all", "--active=true")

    def start(self) -> Self:
        """Import and activate the workflows, start n8n, wait until their webhooks are registered.

        Raises:
            RemoteServiceError: an import failed.
            OperationTimeoutError: n8n did not get ready in time (the log tail is in the message).
        """
        self._import()
        start_at = self.log_path.stat().st_size
        process = launch([self._n8n, "start"], log_path=self.log_path, cwd=self.workdir, env=self._env)
        self._process = process

        def ready() -> bool:
            with self.log_path.open("rb") as log:
                log.seek(start_at)
                return bool(_READY_LINE.search(log.read().decode(errors="replace")))

        wait_ready(process, ready, log_path=self.log_path, what="n8n", timeout_s=START_TIMEOUT_S)
        self.port = wait_for(
            lambda: min(listening_ports(process), default=None), timeout_s=10.0, what="n8n's port", process=process
        )
        return self


if __name__ == "__main__":
    print(ensure_installed())
