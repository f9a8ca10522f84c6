"""Serving benchmark: this wrapper vs BentoML, Ray Serve, MLServer, ``mlflow models serve`` and in-process predict.

One sklearn RandomForest (50 trees, 20 features) logged with cloudpickle, loaded by every server through
``mlflow.pyfunc`` and served pinned to one core while wrk (pinned to another core) keeps C requests in
flight for D seconds after a warm-up. Every configuration, the in-process floor included, runs
``--rounds`` times, interleaved, and the best round counts (the machine is shared). Prints req/s,
rows/s, p50/p99 and the target ratios.

    make bench-serving                  # installs wrk and the peers' venvs, then runs everything
    .venv/bin/python -m benchmarks.serving [--servers wrapper-on bentoml-on ...] [--rows 1] [--duration 8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests

from serving_core.processes import (
    announced_port,
    listening_ports,
    log_tail,
    port_from_file,
    stop_process,
    wait_for,
    wait_until,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
MLSERVER_VENV = REPO_ROOT / ".venv-mlserver"
BENTOML_VENV = REPO_ROOT / ".venv-bentoml"
RAY_VENV = REPO_ROOT / ".venv-ray"
PEERS_DIR = Path(__file__).resolve().parent / "peers"
FEATURES = 20
MODEL_NAME = "rf"
UVICORN_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def process_cpu_s(pid: int) -> float:
    """CPU seconds a process has used so far, all its threads (user + system, ``/proc/PID/stat``)."""
    # The command name in parentheses may hold spaces; utime and stime are the 12th and 13th fields after it.
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_model(model_dir: Path) -> np.ndarray:
    """Train and save the benchmark model; returns 64 rows of inputs."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, FEATURES))
    labels = (features[:, :3].sum(axis=1) > 0).astype(np.int64)
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(features, labels)
    mlflow.sklearn.save_model(
        model,
        str(model_dir),
        serialization_format="cloudpickle",
        signature=infer_signature(features[:5], model.predict(features[:5])),
        input_example=features[:2],
        pip_requirements=[],
    )
    return features[:64]


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class Server:
    """How to start one server (on ports of the kernel's choosing), find its HTTP port and what to send it.

    ``port`` reads the port from the started process and its log file; ``None`` until it is known.
    """

    name: str
    command: list[str]
    port: Callable[[subprocess.Popen[bytes], Path], int | None]
    ready_path: str
    infer_path: str
    body: Callable[[np.ndarray], dict[str, object]]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO_ROOT


def v2_body(rows: np.ndarray, input_name: str, parameters: dict[str, str] | None = None) -> dict[str, object]:
    tensor: dict[str, object] = {
        "name": input_name,
        "shape": list(rows.shape),
        "datatype": "FP64",
        "data": rows.ravel().tolist(),
    }
    body: dict[str, object] = {"inputs": [tensor]}
    if parameters:
        body["parameters"] = parameters
    return body


def wrapper_server(model_dir: Path, work_dir: Path, max_batch_size: int, max_latency_ms: float, label: str) -> Server:
    port_file = work_dir / f"{slug(label)}.ports.json"
    return Server(
        name=label,
        command=[
            *(sys.executable, "-m", "model_wrappers", str(model_dir), "--model-name", MODEL_NAME, "--port", "0"),
            *("--max-batch-size", str(max_batch_size), "--max-latency-ms", str(max_latency_ms)),
            *("--port-file", str(port_file)),
        ],
        port=lambda process, log: port_from_file(port_file),
        ready_path=f"/v2/models/{MODEL_NAME}/ready",
        infer_path=f"/v2/models/{MODEL_NAME}/infer",
        body=lambda rows: v2_body(rows, "input_0"),
        env={"PYTHONPATH": str(REPO_ROOT)},
    )


def mlserver_server(model_dir: Path, work_dir: Path, max_batch_size: int, max_latency_ms: float, label: str) -> Server:
    settings_dir = work_dir / slug(label)
    settings_dir.mkdir()
    model_settings: dict[str, object] = {
        "name": MODEL_NAME,
        "implementation": "mlserver_mlflow.MLflowRuntime",
        "parameters": {"uri": str(model_dir)},
    }
    if max_batch_size > 1:
        model_settings.update(max_batch_size=max_batch_size, max_batch_time=max_latency_ms / 1000)
    # parallel_workers=0: MLServer's default inference pool crashes under uvloop 0.23 (SeldonIO/MLServer#2286).
    settings = {"http_port": 0, "grpc_port": 0, "metrics_port": 0, "parallel_workers": 0, "host": "127.0.0.1"}
    ready_path = f"/v2/models/{MODEL_NAME}/ready"

    def port(process: subprocess.Popen[bytes], log: Path) -> int | None:
        # MLServer logs the ports it was given (0), so its REST port is the listener that answers.
        return next((p for p in sorted(listening_ports(process)) if answers(f"http://127.0.0.1:{p}{ready_path}")), None)

    (settings_dir / "model-settings.json").write_text(json.dumps(model_settings), encoding="utf-8")
    (settings_dir / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    return Server(
        name=label,
        command=[str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(settings_dir)],
        port=port,
        ready_path=ready_path,
        infer_path=f"/v2/models/{MODEL_NAME}/infer",
        # "np" decodes the request as one numpy array, what an unnamed tensor signature wants.
        body=lambda rows: v2_body(rows, "input-0", {"content_type": "np"}),
        cwd=settings_dir,
    )


def mlflow_serve_server(model_dir: Path) -> Server:
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    return Server(
        name="mlflow models serve",
        command=[
            *(str(mlflow_cli), "models", "serve", "-m", str(model_dir), "--env-manager", "local"),
            *("-h", "127.0.0.1", "-p", "0", "-w", "1"),
        ],
        port=lambda process, log: announced_port(log, UVICORN_LISTENING),
        ready_path="/ping",
        infer_path="/invocations",
        body=lambda rows: {"inputs": rows.tolist()},
        # It runs `uvicorn` from PATH. It drops `-p 0` (a falsy port) from that command, so uvicorn would
        # take 8000; UVICORN_PORT, read by uvicorn's command line, gives it 0 instead.
        env={"PATH": f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}", "UVICORN_PORT": "0"},
    )


def free_port() -> int:
    """A port free now; for servers that cannot bind port 0 and report it (a race we accept in a benchmark)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def bentoml_server(model_dir: Path, max_batch_size: int, label: str) -> Server:
    port = free_port()
    return Server(
        name=label,
        command=[
            *(str(BENTOML_VENV / "bin" / "bentoml"), "serve", "bentoml_service:Model"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        port=lambda process, log: port,
        ready_path="/readyz",
        infer_path="/predict",
        body=lambda rows: {"inputs": rows.tolist()},
        env={"BENCH_MODEL_DIR": str(model_dir), "BENCH_MAX_BATCH_SIZE": str(max_batch_size)},
        cwd=PEERS_DIR,
    )


def ray_server(model_dir: Path, work_dir: Path, max_batch_size: int, max_latency_ms: float, label: str) -> Server:
    port_file = work_dir / f"{slug(label)}.ports.json"
    return Server(
        name=label,
        command=[
            *(str(RAY_VENV / "bin" / "python"), str(PEERS_DIR / "ray_serve_app.py"), str(model_dir)),
            *(str(port_file), str(max_batch_size), str(max_latency_ms)),
        ],
        port=lambda process, log: port_from_file(port_file),
        ready_path="/-/healthz",
        infer_path="/predict",
        body=lambda rows: {"inputs": rows.tolist()},
        # Ray would otherwise try to report usage statistics over the network.
        env={"RAY_USAGE_STATS_ENABLED": "0"},
        cwd=PEERS_DIR,
    )


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@contextmanager
def started(server: Server, core: int, log_dir: Path) -> Iterator[str]:
    log_path = log_dir / f"{slug(server.name)}.log"
    env = {**os.environ, **server.env}
    with log_path.open("wb") as log:
        # A session of its own: stopping it stops the worker processes BentoML and Ray start too.
        process = subprocess.Popen(
            ["taskset", "-c", str(core), *server.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=server.cwd,
            start_new_session=True,
        )
    try:
        try:
            port = wait_for(lambda: server.port(process, log_path), timeout_s=180, what=server.name, process=process)
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: answers(url + server.ready_path), timeout_s=180, what=server.name, process=process)
        except Exception as error:
            raise RuntimeError(f"{error}\n{log_tail(log_path)}") from error
        yield url
    finally:
        stop_process(process)


@dataclass
class Result:
    server: str
    concurrency: int
    rows: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rows_per_s(self) -> float:
        return self.requests_per_s * self.rows


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no {percentile}% latency:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def run_wrk(url: str, body: dict[str, object], concurrency: int, duration_s: int, core: int, work_dir: Path) -> str:
    script = work_dir / "request.lua"
    payload = json.dumps(body)
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{payload}]==]\n',
        encoding="utf-8",
    )
    command = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{concurrency}", f"-d{duration_s}s", "--latency"]
    command += ["--timeout", "10s", "-s", str(script), url]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def measure(
    server: Server, url: str, sample: np.ndarray, concurrency: int, rows: int, args: argparse.Namespace, work: Path
) -> Result:
    body = server.body(sample[:rows])
    check = requests.post(url + server.infer_path, json=body, timeout=30)
    if check.status_code != 200:
        raise RuntimeError(f"{server.name} answered {check.status_code}: {check.text[:500]}")
    run_wrk(url + server.infer_path, body, concurrency, args.warmup, args.client_core, work)
    text = run_wrk(url + server.infer_path, body, concurrency, args.duration, args.client_core, work)
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_match:
        errors += sum(int(value) for value in socket_match.groups())
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{text}")
    return Result(
        server.name, concurrency, rows, float(rate.group(1)), _latency_ms(text, "50"), _latency_ms(text, "99"), errors
    )


def in_process_floor(model_dir: Path, sample: np.ndarray, rows: int, seconds: float, core: int) -> float:
    """Predicts per second of the pyfunc alone, pinned to the server core, in a fresh process."""
    code = (
        "import sys, time, numpy as np, mlflow.pyfunc\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "batch = np.load(sys.argv[2])[: int(sys.argv[3])]\n"
        "for _ in range(20): model.predict(batch)\n"
        "count, start = 0, time.perf_counter()\n"
        "while time.perf_counter() - start < float(sys.argv[4]):\n"
        "    model.predict(batch); count += 1\n"
        "print(count / (time.perf_counter() - start))\n"
    )
    with tempfile.NamedTemporaryFile(suffix=".npy") as handle:
        np.save(handle.name, sample)
        arguments = [str(model_dir), handle.name, str(rows), str(seconds)]
        output = subprocess.run(
            ["taskset", "-c", str(core), sys.executable, "-c", code, *arguments],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return float(output.strip().splitlines()[-1])


def best(results: list[Result], server: str, concurrency: int, rows: int) -> Result | None:
    matching = [r for r in results if (r.server, r.concurrency, r.rows) == (server, concurrency, rows)]
    return max(matching, key=lambda r: r.requests_per_s) if matching else None


def ratio(numerator: float | None, denominator: float | None) -> str:
    if numerator is None or denominator is None or denominator == 0:
        return "n/a"
    return f"{numerator / denominator:.2f}x"


OURS_ON, OURS_OFF = "wrapper (batching on)", "wrapper (batching off)"


@dataclass(frozen=True)
class ServerKind:
    """One entry of ``--servers``: its label, whether it batches, and the venv it runs in (``None``: ``.venv``)."""

    label: str
    batching: bool
    venv: Path | None = None


SERVERS: dict[str, ServerKind] = {
    "wrapper-on": ServerKind(OURS_ON, True),
    "wrapper-off": ServerKind(OURS_OFF, False),
    "bentoml-on": ServerKind("BentoML (batching on)", True, BENTOML_VENV),
    "bentoml-off": ServerKind("BentoML (batching off)", False, BENTOML_VENV),
    "ray-on": ServerKind("Ray Serve (batching on)", True, RAY_VENV),
    "ray-off": ServerKind("Ray Serve (batching off)", False, RAY_VENV),
    "mlserver-on": ServerKind("MLServer (batching on)", True, MLSERVER_VENV),
    "mlserver-off": ServerKind("MLServer (batching off)", False, MLSERVER_VENV),
    "mlflow": ServerKind("mlflow models serve", False),
}


def target_lines(results: list[Result], floors: dict[int, float], args: argparse.Namespace) -> list[str]:
    """The issue's targets, each as measured / goal; rows of servers that did not run say n/a."""

    def rows_per_s(name: str, concurrency: int, rows: int) -> float | None:
        result = best(results, name, concurrency, rows)
        return result.rows_per_s if result else None

    def p99(name: str, concurrency: int, rows: int) -> float | None:
        result = best(results, name, concurrency, rows)
        return result.p99_ms if result else None

    peers = [kind for key, kind in SERVERS.items() if key in args.servers and not key.startswith("wrapper")]
    lines = ["", "| target | measured | goal |", "|---|---|---|"]
    for peer in ("BentoML (batching on)", "Ray Serve (batching on)", "MLServer (batching on)"):
        lines.append(
            f"| rows/s at c=32, 1 row: wrapper (batching) / {peer} | "
            f"{ratio(rows_per_s(OURS_ON, 32, 1), rows_per_s(peer, 32, 1))} | >= 1.5x |"
        )
    floor = floors.get(1)
    for concurrency in args.concurrency:
        lines.append(
            f"| batching off, c={concurrency}, 1 row: wrapper req/s / in-process predicts/s | "
            f"{ratio(rows_per_s(OURS_OFF, concurrency, 1), floor)} | >= 0.95x |"
        )
    for peer in peers:
        if not peer.batching:
            lines.append(
                f"| p99 at c=8, 1 row, batching off: {peer.label} / wrapper (higher is better for us) | "
                f"{ratio(p99(peer.label, 8, 1), p99(OURS_OFF, 8, 1))} | >= 1.0x |"
            )
    for concurrency in args.concurrency:
        for peer in peers:
            lines.append(
                f"| 64-row rows/s at c={concurrency}: wrapper (batching) / {peer.label} | "
                f"{ratio(rows_per_s(OURS_ON, concurrency, 64), rows_per_s(peer.label, concurrency, 64))} | >= 1.0x |"
            )
    lines.append(
        f"| wrapper (batching) 1-row rows/s at c=32 / in-process 1-row predicts/s | "
        f"{ratio(rows_per_s(OURS_ON, 32, 1), floor)} | (headroom from batching) |"
    )
    return lines


def report(results: list[Result], floors: dict[int, float], args: argparse.Namespace) -> str:
    lines = [
        f"Model: RandomForest, 50 trees, {FEATURES} features (cloudpickle). Server on core {args.server_core}, "
        f"wrk on core {args.client_core}; {args.duration:g} s after {args.warmup:g} s warm-up; "
        f"best of {args.rounds} interleaved rounds. Wrapper batching: max batch {args.max_batch_size} rows, "
        f"max latency {args.max_latency_ms:g} ms; BentoML: max batch {args.max_batch_size} rows; MLServer and "
        f"Ray Serve: max batch {args.peer_max_batch_size} requests, max wait {args.max_latency_ms:g} ms.",
        "",
        "| server | concurrency | rows/request | req/s | rows/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = list(dict.fromkeys(r.server for r in results))
    for name in names:
        for concurrency in args.concurrency:
            for rows in args.rows:
                result = best(results, name, concurrency, rows)
                if result is not None:
                    lines.append(
                        f"| {name} | {concurrency} | {rows} | {result.requests_per_s:.0f} | {result.rows_per_s:.0f} "
                        f"| {result.p50_ms:.1f} | {result.p99_ms:.1f} | {result.errors} |"
                    )
    for rows, rate in floors.items():
        lines.append(f"| in-process predict (floor) | 1 | {rows} | {rate:.0f} | {rate * rows:.0f} | | | |")
    return "\n".join(lines + target_lines(results, floors, args))


def missing_prerequisites(servers: list[str]) -> list[str]:
    """What is not installed for ``servers``, each with how to get it."""
    missing = []
    if shutil.which("wrk") is None:
        missing.append("wrk (the HTTP load generator): `sudo apt-get install wrk`, or `make bench-serving`")
    if shutil.which("taskset") is None:
        missing.append("taskset (pins servers to a core): `sudo apt-get install util-linux`")
    for venv in dict.fromkeys(SERVERS[key].venv for key in servers):
        if venv is not None and not (venv / ".installed").exists():
            missing.append(f"{venv.name}: `make {venv.name}/.installed`")
    return missing


def build_server(key: str, model_dir: Path, work: Path, args: argparse.Namespace) -> Server:
    kind = SERVERS[key]
    batch = args.max_batch_size if kind.batching else 1
    peer_batch = args.peer_max_batch_size if kind.batching else 1
    latency = args.max_latency_ms if kind.batching else 0.0
    if key.startswith("wrapper"):
        return wrapper_server(model_dir, work, batch, latency, kind.label)
    if key.startswith("bentoml"):
        return bentoml_server(model_dir, batch, kind.label)
    if key.startswith("ray"):
        return ray_server(model_dir, work, peer_batch, latency, kind.label)
    if key.startswith("mlserver"):
        return mlserver_server(model_dir, work, peer_batch, latency, kind.label)
    return mlflow_serve_server(model_dir)


def main() -> int:
    from model_wrappers.settings import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_LATENCY_MS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=8, help="seconds measured per configuration")
    parser.add_argument(
        "--warmup", type=int, default=2, help="seconds of load before each measurement (wrk counts whole seconds)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of every configuration")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 64])
    parser.add_argument(
        "--max-batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE, help="rows, for the wrapper and BentoML"
    )
    parser.add_argument(
        "--peer-max-batch-size", type=int, default=64, help="requests, for MLServer and Ray Serve (they count those)"
    )
    parser.add_argument("--max-latency-ms", type=float, default=DEFAULT_MAX_LATENCY_MS)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=list(SERVERS),
        default=list(SERVERS),
        metavar="SERVER",
        help=f"subset of: {' '.join(SERVERS)} (default: all)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    missing = missing_prerequisites(args.servers)
    if missing:
        print("The serving benchmark needs:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as temp, ExitStack() as stack:
        work = Path(temp)
        model_dir = work / "model"
        sample = build_model(model_dir)
        running: list[tuple[Server, str]] = []
        for key in args.servers:
            server = build_server(key, model_dir, work, args)
            url = stack.enter_context(started(server, args.server_core, work))
            print(f"started {server.name} at {url}", file=sys.stderr)
            running.append((server, url))
        results: list[Result] = []
        floors: dict[int, float] = {}
        for round_number in range(args.rounds):
            # The floor runs in every round too, so it sees the same noise as the servers.
            for rows in args.rows:
                rate = in_process_floor(model_dir, sample, rows, min(args.duration, 5.0), args.server_core)
                floors[rows] = max(rate, floors.get(rows, 0.0))
                print(f"round {round_number + 1}: in-process predict rows={rows}: {rate:.0f}/s", file=sys.stderr)
            for concurrency in args.concurrency:
                for rows in args.rows:
                    for server, url in running:
                        result = measure(server, url, sample, concurrency, rows, args, work)
                        results.append(result)
                        print(
                            f"round {round_number + 1}: {result.server} c={concurrency} rows={rows}: "
                            f"{result.requests_per_s:.0f} req/s, {result.rows_per_s:.0f} rows/s, "
                            f"p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, errors {result.errors}",
                            file=sys.stderr,
                        )
                        time.sleep(0.5)
        text = report(results, floors, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
