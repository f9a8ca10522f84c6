"""Small MLflow models saved to disk for the model-server tests, and a running-server helper."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import requests
from mlflow.models import infer_signature

# ``wait_for`` is a parameter of running_server.
from serving_core.processes import log_tail, port_from_file, stop_process, wait_until
from serving_core.processes import wait_for as wait_for_value

REPO_ROOT = Path(__file__).resolve().parents[2]


class SlowScaledSum(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Row sums times 2, after a short pause so concurrent callers pile up into batches.

    Any negative value makes the whole predict call fail: the batch-failure case.
    """

    def predict(self, context, model_input, params=None):
        values = np.asarray(model_input, dtype=np.float64)
        if (values < 0).any():
            raise ValueError("negative values are not allowed")
        time.sleep(0.02)
        return values.sum(axis=1) * 2.0


class CityLabel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A column-signature model: one text label per row from a string, a long and a double column."""

    def predict(self, context, model_input, params=None):
        return [f"{city}:{age + income:g}" for city, age, income in model_input[["city", "age", "income"]].to_numpy()]


def save_iris_classifier(path: Path) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    features = features.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    mlflow.sklearn.save_model(model, str(path), input_example=features[:3], pip_requirements=[])
    return path


def save_slow_sum(path: Path, *, warmup_fails: bool = False) -> Path:
    example = np.array([[-1.0, 2.0, 3.0]] if warmup_fails else [[1.0, 2.0, 3.0]])
    signature = infer_signature(example, np.array([12.0]))
    mlflow.pyfunc.save_model(
        str(path), python_model=SlowScaledSum(), signature=signature, input_example=example, pip_requirements=[]
    )
    return path


def save_city_label(path: Path) -> Path:
    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "age": [30, 41], "income": [1.5, 2.25]})
    signature = infer_signature(frame, np.array(["Oslo:31.5", "Lima:43.25"], dtype=object))
    mlflow.pyfunc.save_model(
        str(path), python_model=CityLabel(), signature=signature, input_example=frame, pip_requirements=[]
    )
    return path


@dataclass
class RunningServer:
    """A wrapper server process on 127.0.0.1."""

    name: str
    http_port: int
    grpc_port: int | None
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/v2/models/{self.name}/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def live(self) -> bool:
        try:
            return requests.get(f"{self.url}/v2/health/live", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False


@contextmanager
def running_server(
    model_dir: Path,
    name: str,
    log_dir: Path,
    *extra_args: str,
    grpc: bool = False,
    wait_for: str = "ready",
) -> Iterator[RunningServer]:
    """Start ``python -m model_wrappers`` and stop it afterwards; waits for readiness (or liveness).

    The server binds ports of the kernel's choosing and writes them to a port file once listening.
    """
    port_file = log_dir / f"{name}-ports.json"
    port_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "model_wrappers", "--model-dir", str(model_dir), "--model-name", name]
    command += ["--http-port", "0", *extra_args]
    if grpc:
        command += ["--grpc-port", "0"]
    command += ["--port-file", str(port_file)]
    log_path = log_dir / f"{name}-server.log"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
    try:
        try:
            what = f"model server {name}"
            http_port = wait_for_value(lambda: port_from_file(port_file), timeout_s=120, what=what, process=process)
            server = RunningServer(name, http_port, port_from_file(port_file, "grpc"), process, log_path)
            check = server.ready if wait_for == "ready" else server.live
            wait_until(check, timeout_s=120, what=what, process=process)
        except Exception as error:
            raise AssertionError(f"{error}\n{log_tail(log_path)}") from error
        yield server
    finally:
        stop_process(process)


class Sleeper(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Sleeps as many seconds as the first value of its first row says, then returns the values: shutdown tests."""

    def predict(self, context, model_input, params=None):
        values = np.asarray(model_input, dtype=np.float64)
        time.sleep(float(values[0, 0]))
        return values[:, 0]


def save_sleeper(path: Path) -> Path:
    example = np.array([[0.0]])
    signature = infer_signature(example, np.array([0.0]))
    mlflow.pyfunc.save_model(
        str(path), python_model=Sleeper(), signature=signature, input_example=example, pip_requirements=[]
    )
    return path


def scrape(server: RunningServer) -> dict[str, float]:
    """The server's own metrics as ``{series: value}`` (series written as in the exposition format)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{server.url}/metrics", timeout=10).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples
