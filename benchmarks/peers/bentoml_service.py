"""The benchmark model as a BentoML service, for ``benchmarks/serving.py`` (runs in ``.venv-bentoml``).

Started as ``bentoml serve bentoml_service:Model`` with the settings in the environment:
``BENCH_MODEL_DIR`` (the MLflow model, loaded through ``mlflow.pyfunc`` like every other server),
``BENCH_MAX_BATCH_SIZE`` (1 turns adaptive batching off). BentoML's ``max_batch_size`` counts
rows along ``batch_dim`` 0. ``max_latency_ms`` keeps BentoML's default: its dispatcher answers 503
to requests it predicts will miss that budget, so a 5 ms budget would turn load into errors
instead of batches.
"""

import os

import bentoml
import mlflow.pyfunc
import numpy as np

MODEL_DIR = os.environ["BENCH_MODEL_DIR"]
MAX_BATCH_SIZE = int(os.environ.get("BENCH_MAX_BATCH_SIZE", "1"))


@bentoml.service(workers=1)
class Model:
    def __init__(self) -> None:
        self.model = mlflow.pyfunc.load_model(MODEL_DIR)

    if MAX_BATCH_SIZE > 1:

        @bentoml.api(batchable=True, batch_dim=0, max_batch_size=MAX_BATCH_SIZE)
        def predict(self, inputs: np.ndarray) -> np.ndarray:
            return np.asarray(self.model.predict(inputs))

    else:

        @bentoml.api
        def predict(self, inputs: np.ndarray) -> np.ndarray:
            return np.asarray(self.model.predict(inputs))
