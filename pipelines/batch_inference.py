"""Pipeline ``batch-inference``: every item of an input through a V2 endpoint, one result file per shard."""

from kfp import dsl

from components.plan_batch_job import plan_batch_job
from components.run_batch_shard import run_batch_shard
from components.summarise_batch_job import summarise_batch_job
from pipelines.credentials import with_storage_credentials

# Shard pods at once: each runs its own adaptive client, so together they still back off on one predictor.
SHARD_PARALLELISM = 4


@dsl.pipeline(
    name="batch-inference",
    description="Batch inference: shard an input (JSONL, CSV, Parquet or a folder of them on s3:// or a path), "
    "call an InferenceService's V2 endpoint with adaptive concurrency (or serve a model URI in GPU pods), write "
    "one result file per shard atomically, skip finished shards on a re-run, fail only past the error budget.",
)
def batch_inference(
    input_uri: str = "s3://creativeflow-jobs/inputs/example/",
    output_uri: str = "s3://creativeflow-jobs/outputs/example/",
    inference_service: str = "demo-iris-classifier",
    namespace: str = "ai-serving",
    endpoint_url: str = "",
    model_name: str = "",
    model_uri: str = "",
    input_format: str = "auto",
    shard_size: int = 10000,
    rows_per_request: int = 32,
    max_concurrency: int = 64,
    latency_tolerance: float = 2.0,
    error_budget: float = 0.001,
    storage_secret: str = "aiserving-storage",
) -> None:
    """Run a batch inference job.

    Args:
        input_uri: s3://bucket/prefix or a path (file or folder) of JSONL, CSV or Parquet files.
        output_uri: s3://bucket/prefix or a path for the results (one JSONL file per shard), errors.jsonl
            files, the manifest and the _SUCCESS marker; must be empty or hold this same job.
        inference_service: InferenceService whose V2 endpoint is called (ignored with endpoint_url or model_uri).
        namespace: Kubernetes namespace of the InferenceService.
        endpoint_url: Base URL of a V2 endpoint to call instead of looking the InferenceService up.
        model_name: V2 model name; empty for the InferenceService's name.
        model_uri: A model folder (path or s3://) served inside GPU shard pods instead of calling an endpoint.
        input_format: auto (from each file's suffix), jsonl, csv or parquet.
        shard_size: Items per shard; one output file and one ParallelFor task each.
        rows_per_request: Items per V2 request.
        max_concurrency: Most requests in flight per shard task; the client adapts below it.
        latency_tolerance: How much slower the client may make the predictor: it steers its concurrency to
            where the p90 latency is this multiple of the unloaded p90 (and cuts it on 429/503).
        error_budget: Fraction of items that may fail (written to errors files with the reason) before the
            job fails.
        storage_secret: Kubernetes secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL.
    """
    plan = plan_batch_job(
        input_uri=input_uri, output_uri=output_uri, inference_service=inference_service, namespace=namespace,
        endpoint_url=endpoint_url, model_name=model_name, model_uri=model_uri, input_format=input_format,
        shard_size=shard_size,
    ).set_caching_options(False)  # fmt: skip
    with_storage_credentials(plan, storage_secret)
    knobs = {
        "output_uri": output_uri, "rows_per_request": rows_per_request, "max_concurrency": max_concurrency,
        "latency_tolerance": latency_tolerance, "error_budget": error_budget,
    }  # fmt: skip
    # The branch is outside the loop: the shard tasks of the two modes differ in the resources they ask for.
    shards = plan.output
    with (
        dsl.If(model_uri == "", name="call-endpoint"),
        dsl.ParallelFor(shards, parallelism=SHARD_PARALLELISM, name="each-shard") as shard,
    ):
        remote = run_batch_shard(shard=shard, **knobs).set_display_name("run shard")
        with_storage_credentials(remote.set_caching_options(False), storage_secret)
    with (
        dsl.Else(name="serve-in-pod"),
        dsl.ParallelFor(shards, parallelism=SHARD_PARALLELISM, name="each-shard-on-a-gpu") as shard,
    ):
        # The model runs in the shard's pod: give it the GPU the InferenceService would have had.
        in_pod = run_batch_shard(shard=shard, **knobs).set_display_name("run shard on a GPU")
        in_pod.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        with_storage_credentials(in_pod.set_caching_options(False), storage_secret)
    summary = summarise_batch_job(output_uri=output_uri, error_budget=error_budget).after(remote, in_pod)
    with_storage_credentials(summary.set_caching_options(False), storage_secret)
