"""Canary scenarios on real processes: a classifier whose behaviour a file picks, and a weighted load generator.

``SwitchableClassifier`` is an MLflow pyfunc served by the real model wrapper. It reads a behaviour file on
every call, so one canary process plays each canary of the scenarios in turn: ``good`` (same answers as
stable), ``errors`` (raises on about 40 % of rows → HTTP 500), ``latency`` (0.3 s per call) and
``changed`` (a different class for every row).

``WeightedLoad`` sends a bounded stream of V2 inference requests on 127.0.0.1 and picks stable or canary
per request by the split the test API server's controller reports for the InferenceService now, as the
Knative route or the Standard-mode Services would. When the InferenceService's predictor has a payload
logger, each request that stable answers is also posted to the logger URL as the two CloudEvents KServe's
agent sends (``tests.support.kserve_logger``, after kserve/kserve pkg/logger/worker.go).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import requests
from mlflow.models import infer_signature

from tests.support.kserve_logger import LoggerIdentity, log_exchange

BEHAVIOURS = ("good", "errors", "latency", "changed")


class SwitchableClassifier(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Class ``floor(row sum) mod 3``; the behaviour file bends it (see the module docstring)."""

    def __init__(self, behaviour_file: str) -> None:
        self.behaviour_file = behaviour_file

    def predict(self, context, model_input, params=None):
        values = np.asarray(model_input, dtype=np.float64)
        try:
            behaviour = Path(self.behaviour_file).read_text(encoding="utf-8").strip()
        except OSError:
            behaviour = "good"
        classes = np.floor(values.sum(axis=1)).astype(np.int64) % 3
        if behaviour == "errors" and (np.floor(values[:, 0] * 1000) % 10 < 4).any():
            raise ValueError("injected canary error")
        if behaviour == "latency":
            time.sleep(0.3)
        if behaviour == "changed":
            classes = (classes + 1) % 3
        return classes


def save_switchable_classifier(path: Path, behaviour_file: Path) -> Path:
    behaviour_file.write_text("good", encoding="utf-8")
    example = np.array([[0.1, 0.2, 0.3, 0.4]])
    signature = infer_signature(example, np.array([1]))
    mlflow.pyfunc.save_model(
        str(path), python_model=SwitchableClassifier(str(behaviour_file)), signature=signature,
        input_example=example, pip_requirements=[],
    )  # fmt: skip
    return path


# Reads the controller's split: {model (storage URI): percent} for what gets traffic now, and the logger URL.
SplitReader = Callable[[], tuple[dict[str, int], str | None]]


@dataclass
class WeightedLoad:
    """A rate-limited request stream split by the live weights; ``counts`` says where requests went."""

    split: SplitReader
    servers: dict[str, str]  # model (storage URI) → wrapper base URL
    model_name: str
    isvc: tuple[str, str]  # namespace, name: for the CloudEvents' headers
    rate_per_s: float = 30.0
    workers: int = 6
    max_requests: int = 20000
    counts: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _tokens: queue.Queue[float] = field(default_factory=lambda: queue.Queue(maxsize=64))
    _threads: list[threading.Thread] = field(default_factory=list)
    _sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> WeightedLoad:
        self._threads = [threading.Thread(target=self._pace, daemon=True)]
        self._threads += [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _pace(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set() and self._sent < self.max_requests:
            rate = self.rate_per_s
            if rate <= 0:
                time.sleep(0.05)
                next_at = time.monotonic()
                continue
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
            try:
                self._tokens.put(next_at, timeout=0.5)
                self._sent += 1
            except queue.Full:
                next_at = time.monotonic()  # the workers are behind: do not build a backlog

    def _work(self) -> None:
        session = requests.Session()
        rng = random.Random()
        while not self._stop.is_set():
            try:
                self._tokens.get(timeout=0.2)
            except queue.Empty:
                continue
            self._send(session, rng)

    def _send(self, session: requests.Session, rng: random.Random) -> None:
        shares, logger_url = self.split()
        total = sum(shares.values())
        if not total:
            return
        pick = rng.uniform(0, total)
        model = next(iter(shares))
        for model, percent in shares.items():  # noqa: B007 - the loop picks the model
            pick -= percent
            if pick <= 0:
                break
        row = [round(rng.uniform(0, 1.5), 3) for _ in range(4)]
        body = {"inputs": [{"name": "input_0", "shape": [1, 4], "datatype": "FP64", "data": row}]}
        url = f"{self.servers[model]}/v2/models/{self.model_name}/infer"
        try:
            response = session.post(url, json=body, timeout=10)
        except requests.RequestException:
            with self._lock:
                self.counts[f"{model} unreachable"] += 1
            return
        with self._lock:
            self.counts[model] += 1
        stable = max(shares, key=lambda key: shares[key])
        if logger_url and model == stable and response.status_code == 200:
            # KServe's agent logs what the stable predictor answered, as tests.support.kserve_logger does.
            namespace, name = self.isvc
            try:
                log_exchange(session, logger_url, LoggerIdentity(name, namespace), json.dumps(body).encode(),
                             response.content)  # fmt: skip
            except requests.RequestException:
                return
