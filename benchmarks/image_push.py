"""Image push benchmark: our daemonless push against the hashing floor, skopeo copy and buildah.

All against one local docker-registry on 127.0.0.1. Two kinds of case.

**Versions** (``--shards 8 --shard-mib 256``): a model of N shards plus a config; version 2 is a
fresh copy (new inodes, so the digest cache cannot help) with one shard changed. Each tool pushes
version 1, then version 2 is timed: ours layered (the default), ours single-layer, skopeo copy of
an OCI layout holding our layered image, buildah bud + push. Bytes sent come from our result
(registry bytes for the others are not separated). Pull side: ``skopeo copy`` of version 2 into
an OCI layout that already holds version 1, layered vs single layer.

**Single file**, for 1 GiB and 4 GiB model files of random bytes and of float32 weights:

- ours: ``build_image`` (uncompressed layer, scratch base) to a fresh repository, digest cache cold;
- openssl: ``openssl dgst -sha256`` of the same file, the floor for reading and hashing it once;
- skopeo: ``skopeo copy`` of an OCI layout holding the same uncompressed layer (skopeo gzips on push);
- buildah: ``buildah bud`` of ``FROM busybox`` + ``COPY`` and ``buildah push`` (base pulled beforehand);
- re-push: ours again with the model unchanged (digest cache warm, confirmed by HEAD).

Each command runs as its own process; peak RSS comes from ``wait4`` for that process alone, and the
registry's CPU time from ``/proc/<pid>/stat`` around each step. The model files are written and
synced to disk before any step is timed, so their writeback does not land in one tool's time.
Run: ``python benchmarks/image_push.py`` (``--sizes-gib 1`` for a quick run, ``--json PATH`` to
keep the numbers). Needs about 6x the largest size in free disk under ``--work-dir``; everything is
removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from aiserving.local.busybox_base import busybox_rootfs  # noqa: E402
from aiserving.local.registry import LocalRegistry  # noqa: E402
from benchmarks.serving import process_cpu_s  # noqa: E402
from oci_images.build import RegistryAccess, push_directory_image  # noqa: E402
from oci_images.image import Platform  # noqa: E402
from oci_images.layer import scan_tree  # noqa: E402
from oci_images.reference import parse_reference  # noqa: E402

GIB = 1 << 30
GNU_TIME = "/usr/bin/time"  # Debian package "time"
PUSH_RUNNER = """
import json, sys, time
from pathlib import Path
from oci_images import build_image
started = time.perf_counter()
result = build_image(Path(sys.argv[1]), sys.argv[2], base_image=sys.argv[3], insecure=True,
                     show_progress=False, cache_dir=Path(sys.argv[4]),
                     layers=sys.argv[5] if len(sys.argv) > 5 else None)
print(json.dumps({"seconds": time.perf_counter() - started, "reused": result.reused,
                  "image": result.pinned, "sent": result.bytes_sent, "skipped": result.bytes_skipped}))
"""


@dataclass
class Measurement:
    case: str
    tool: str
    seconds: float
    mb_per_s: float
    peak_rss_mb: float
    registry_cpu_s: float
    note: str = ""


def run_measured(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float, str]:
    """Run a command; return wall seconds, its own peak RSS in MB, and its stdout.

    GNU time forks the command from its own small process, so the RSS is the command's alone
    (wait4 from this process would count the Python parent's pages the child had before exec).
    """
    with tempfile.NamedTemporaryFile() as rss_file, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        returncode = subprocess.call(
            [GNU_TIME, "-f", "%M", "-o", rss_file.name, *command], stdout=out, stderr=err, env=env, cwd=cwd
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        peak_kib = int(Path(rss_file.name).read_text().split()[-1])
    if returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({returncode}): {stderr[-2000:]}")
    return seconds, peak_kib / 1024, stdout


def write_model(path: Path, size: int, kind: str) -> None:
    rng = np.random.default_rng(7)
    chunk = 64 << 20
    with path.open("wb") as stream:
        written = 0
        while written < size:
            count = min(chunk, size - written)
            if kind == "random":
                stream.write(os.urandom(count))
            else:
                stream.write(rng.normal(0.0, 0.02, count // 4).astype(np.float32).tobytes())
            written += count


class Bench:
    def __init__(self, work: Path, registry: LocalRegistry, busybox: str) -> None:
        self.work = work
        self.registry = registry
        self.busybox = busybox
        self.env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.results: list[Measurement] = []

    def measure(self, case: str, tool: str, size: int, command: list[str], note: str = "", **kwargs: object) -> str:
        assert self.registry.pid is not None
        cpu_before = process_cpu_s(self.registry.pid)
        seconds, rss, stdout = run_measured(command, **kwargs)  # type: ignore[arg-type]
        cpu = process_cpu_s(self.registry.pid) - cpu_before
        self.results.append(Measurement(case, tool, seconds, size / seconds / 1e6, rss, cpu, note))
        print(
            f"  {tool:<10} {seconds:8.2f} s {size / seconds / 1e6:8.0f} MB/s  rss {rss:7.0f} MB  "
            f"registry cpu {cpu:6.2f} s {note}",
            flush=True,
        )
        return stdout

    def buildah(self, *args: str) -> list[str]:
        state = self.work / "buildah"
        return [
            "buildah",
            "--root",
            str(state / "root"),
            "--runroot",
            str(state / "runroot"),
            "--storage-driver",
            "vfs",
            *args,
        ]

    def run_case(self, size_gib: float, kind: str) -> None:
        case = f"{size_gib:g} GiB {kind}"
        size = int(size_gib * GIB)
        print(f"{case}:", flush=True)
        package = self.work / "package"
        package.mkdir()
        write_model(package / "model.bin", size, kind)
        os.sync()  # write back the fresh test data now, not during whichever tool runs first
        cache = self.work / "cache"
        tag = f"{size_gib:g}g-{kind}"
        host = self.registry.host
        python = sys.executable
        try:
            self.measure(case, "openssl", size, ["openssl", "dgst", "-sha256", str(package / "model.bin")])
            ours = self.measure(
                case,
                "ours",
                size,
                [python, "-c", PUSH_RUNNER, str(package), f"{host}/bench/ours:{tag}", "scratch", str(cache)],
                env=self.env,
            )
            first = json.loads(ours)
            assert not first["reused"]
            layout = self.work / "layout"
            run_measured(
                [
                    python,
                    "-c",
                    PUSH_RUNNER,
                    str(package),
                    f"oci-layout:{layout}:{tag}",
                    "scratch",
                    str(self.work / "layout-cache"),
                ],
                env=self.env,
            )
            self.measure(
                case,
                "skopeo",
                size,
                [
                    "skopeo",
                    "copy",
                    "--quiet",
                    "--dest-tls-verify=false",
                    f"oci:{layout}:{tag}",
                    f"docker://{host}/bench/skopeo:{tag}",
                ],
                note="(gzips on push)",
            )
            shutil.rmtree(layout)
            # before buildah: its build context hard-links the model, which moves the file's ctime
            again = self.measure(
                case,
                "re-push",
                size,
                [python, "-c", PUSH_RUNNER, str(package), f"{host}/bench/ours:{tag}", "scratch", str(cache)],
                env=self.env,
            )
            second = json.loads(again)
            assert second["reused"], "the re-push did not reuse the layer"
            assert second["image"] == first["image"]
            self.results[-1].note = f"(in-process {second['seconds']:.3f} s)"
            print(f"             in-process re-push {second['seconds']:.3f} s", flush=True)
            context = self.work / "context"
            context.mkdir()
            os.link(package / "model.bin", context / "model.bin")
            (context / "Dockerfile").write_text(f"FROM {self.busybox}\nCOPY model.bin /models/model.bin\n")
            run_measured(self.buildah("pull", "--tls-verify=false", self.busybox))
            started = time.perf_counter()
            cpu_before = process_cpu_s(self.registry.pid or 0)
            bud_s, bud_rss, _ = run_measured(
                self.buildah(
                    "bud", "--tls-verify=false", "--isolation", "chroot", "-t", f"localhost/bench:{tag}", str(context)
                )
            )
            push_s, push_rss, _ = run_measured(
                self.buildah(
                    "push", "--tls-verify=false", f"localhost/bench:{tag}", f"docker://{host}/bench/buildah:{tag}"
                )
            )
            seconds = time.perf_counter() - started
            cpu = process_cpu_s(self.registry.pid or 0) - cpu_before
            self.results.append(
                Measurement(
                    case,
                    "buildah",
                    seconds,
                    size / seconds / 1e6,
                    max(bud_rss, push_rss),
                    cpu,
                    f"(bud {bud_s:.1f} s + push {push_s:.1f} s)",
                )
            )
            print(
                f"  buildah    {seconds:8.2f} s {size / seconds / 1e6:8.0f} MB/s  rss {max(bud_rss, push_rss):7.0f} MB"
                f"  registry cpu {cpu:6.2f} s (bud {bud_s:.1f} s + push {push_s:.1f} s)",
                flush=True,
            )
        finally:
            run_measured(self.buildah("rmi", "--all", "--force"))
            for path in (package, self.work / "context", self.work / "layout", cache, self.work / "layout-cache"):
                shutil.rmtree(path, ignore_errors=True)

    def run_versions(self, shards: int, shard_mib: int) -> None:
        case = f"{shards}x{shard_mib} MiB v2"
        shard = shard_mib << 20
        total = shards * shard
        print(f"{case}:", flush=True)
        host, python = self.registry.host, sys.executable
        v1, v2 = self.work / "v1", self.work / "v2"
        v1.mkdir()
        for index in range(shards):
            write_model(v1 / f"model-{index + 1:05d}-of-{shards:05d}.safetensors", shard, "random")
        (v1 / "config.json").write_text('{"version": 1}')
        shutil.copytree(v1, v2)  # a fresh download: new inodes, cold digest cache
        write_model(v2 / f"model-{shards // 2:05d}-of-{shards:05d}.safetensors", shard, "random")
        (v2 / "config.json").write_text('{"version": 2}')
        os.sync()
        try:
            for tool, layers in (("ours", "per-file"), ("ours single", "single")):
                repo = "layered" if layers == "per-file" else "single"
                cache = self.work / f"cache-{repo}"
                push = [python, "-c", PUSH_RUNNER]
                run_measured([*push, str(v1), f"{host}/bench/{repo}:v1", "scratch", str(cache), layers], env=self.env)
                out = self.measure(
                    case,
                    tool,
                    total,
                    [*push, str(v2), f"{host}/bench/{repo}:v2", "scratch", str(cache), layers],
                    env=self.env,
                )
                document = json.loads(out)
                self.results[-1].note = f"(sent {document['sent'] / (1 << 20):.0f} MiB of {total >> 20} MiB)"
                print(f"             sent {document['sent'] >> 20} MiB, skipped {document['skipped'] >> 20} MiB")
            layout = self.work / "layout"
            for version, package in (("v1", v1), ("v2", v2)):
                run_measured(
                    [
                        python,
                        "-c",
                        PUSH_RUNNER,
                        str(package),
                        f"oci-layout:{layout}:{version}",
                        "scratch",
                        str(self.work / "layout-cache"),
                    ],
                    env=self.env,
                )
            copy = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
            run_measured([*copy, f"oci:{layout}:v1", f"docker://{host}/bench/skopeo:v1"])
            self.measure(
                case,
                "skopeo",
                total,
                [*copy, f"oci:{layout}:v2", f"docker://{host}/bench/skopeo:v2"],
                note="(gzips on push)",
            )
            for version, package in (("v1", v1), ("v2", v2)):
                context = self.work / f"context-{version}"
                shutil.copytree(package, context / "model", copy_function=os.link)
                (context / "Dockerfile").write_text(f"FROM {self.busybox}\nCOPY model /models/\n")
            run_measured(self.buildah("pull", "--tls-verify=false", self.busybox))
            for version in ("v1", "v2"):
                started = time.perf_counter()
                run_measured(
                    self.buildah(
                        "bud",
                        "--isolation",
                        "chroot",
                        "-t",
                        f"localhost/v:{version}",
                        str(self.work / f"context-{version}"),
                    )
                )
                run_measured(
                    self.buildah(
                        "push",
                        "--tls-verify=false",
                        f"localhost/v:{version}",
                        f"docker://{host}/bench/buildah:{version}",
                    )
                )
                seconds = time.perf_counter() - started
            self.results.append(
                Measurement(case, "buildah", seconds, total / seconds / 1e6, 0, 0, "(bud + push of v2)")
            )
            print(f"  buildah    {seconds:8.2f} s (bud + push of v2)", flush=True)
            for repo in ("layered", "single"):
                pulled = self.work / f"pulled-{repo}"
                pull = ["skopeo", "copy", "--quiet", "--src-tls-verify=false"]
                run_measured([*pull, f"docker://{host}/bench/{repo}:v1", f"oci:{pulled}:v1"])
                self.measure(
                    case,
                    f"pull v2 {repo}",
                    total,
                    [*pull, f"docker://{host}/bench/{repo}:v2", f"oci:{pulled}:v2"],
                    note="(skopeo copy to an OCI layout holding v1)",
                )
        finally:
            run_measured(self.buildah("rmi", "--all", "--force"))
            for path in self.work.iterdir():
                if path.name not in ("registry", "busybox", "busybox-cache"):
                    shutil.rmtree(path, ignore_errors=True)


def summarize(results: list[Measurement]) -> str:
    lines = [
        "| case | tool | seconds | MB/s | peak RSS MB | registry CPU s | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for item in results:
        lines.append(
            f"| {item.case} | {item.tool} | {item.seconds:.2f} | {item.mb_per_s:.0f} | {item.peak_rss_mb:.0f} "
            f"| {item.registry_cpu_s:.2f} | {item.note} |"
        )
    lines += [
        "",
        "| case | ours / skopeo (target ≤ 0.9) | buildah / ours (target ≥ 6) | ours / openssl floor "
        "| re-push s (target ≤ 0.5) | ours peak RSS MB (target ≤ 150) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case in dict.fromkeys(item.case for item in results):
        by_tool = {item.tool: item for item in results if item.case == case}
        if not {"ours", "skopeo", "buildah", "openssl", "re-push"} <= by_tool.keys():
            continue
        ours = by_tool["ours"].seconds
        in_process = by_tool["re-push"].note.removeprefix("(in-process ").removesuffix(" s)")
        lines.append(
            f"| {case} | {ours / by_tool['skopeo'].seconds:.2f} | {by_tool['buildah'].seconds / ours:.1f} "
            f"| {ours / by_tool['openssl'].seconds:.1f} | {in_process} (process {by_tool['re-push'].seconds:.2f}) "
            f"| {by_tool['ours'].peak_rss_mb:.0f} |"
        )
    versions = [case for case in dict.fromkeys(item.case for item in results) if case.endswith(" v2")]
    if versions:
        lines += [
            "",
            "| case | ours layered / ours single-layer (target ≤ 0.2) | skopeo / ours | buildah / ours "
            "| pull v2: layered / single |",
            "|---|---:|---:|---:|---:|",
        ]
    for case in versions:
        seconds = {item.tool: item.seconds for item in results if item.case == case}
        ours = seconds.get("ours", float("nan"))
        lines.append(
            f"| {case} | {ours / seconds.get('ours single', float('nan')):.2f} "
            f"| {seconds.get('skopeo', float('nan')) / ours:.1f} | {seconds.get('buildah', float('nan')) / ours:.1f} "
            f"| {seconds.get('pull v2 layered', float('nan')) / seconds.get('pull v2 single', float('nan')):.2f} |"
        )
    singles = [item for item in results if item.tool == "ours" and not item.case.endswith(" v2")]
    if singles:
        lines += ["", "| case | ours wall / registry CPU (target ≤ 1.1) |", "|---|---:|"]
        lines += [f"| {item.case} | {item.seconds / max(item.registry_cpu_s, 1e-9):.2f} |" for item in singles]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-gib", type=float, nargs="+", default=[1, 4])
    parser.add_argument("--kinds", nargs="+", default=["random", "float32"], choices=["random", "float32"])
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--shards", type=int, default=8, help="versions case: shards per model (0: skip the case)")
    parser.add_argument("--shard-mib", type=int, default=256, help="versions case: MiB per shard")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="image-push-bench-", dir=args.work_dir))
    free = shutil.disk_usage(work).free
    if free < 6 * max(args.sizes_gib) * GIB:
        sys.exit(f"need {6 * max(args.sizes_gib)} GiB free under {work}, have {free / GIB:.0f} GiB")
    print(
        f"cpus: {os.cpu_count()}  python {sys.version.split()[0]}  "
        f"skopeo: {subprocess.run(['skopeo', '--version'], capture_output=True, text=True).stdout.strip()}  "
        f"buildah: {subprocess.run(['buildah', '--version'], capture_output=True, text=True).stdout.strip()}"
    )
    results: list[Measurement] = []
    cases: list[tuple[str, float]] = [("versions", 0)] if args.shards else []
    cases += [(kind, size) for size in args.sizes_gib for kind in args.kinds]
    try:
        for kind, size in cases:
            with LocalRegistry(work / "registry") as registry:
                rootfs = busybox_rootfs(work / "busybox")
                busybox = push_directory_image(
                    scan_tree(rootfs, prefix=""),
                    parse_reference(f"{registry.host}/base/busybox:1"),
                    base_image="scratch",
                    platform=Platform("linux", "amd64"),
                    cmd=["sh"],
                    access=RegistryAccess(insecure=True),
                    cache_dir=work / "busybox-cache",
                ).pinned
                bench = Bench(work, registry, busybox)
                try:
                    if kind == "versions":
                        bench.run_versions(args.shards, args.shard_mib)
                    else:
                        bench.run_case(size, kind)
                finally:
                    results += bench.results
            shutil.rmtree(work / "registry")
            shutil.rmtree(work / "busybox")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print()
        print(summarize(results))
        if args.json:
            args.json.write_text(json.dumps([asdict(item) for item in results], indent=2))


if __name__ == "__main__":
    main()
