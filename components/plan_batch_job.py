"""Component: check a batch job's inputs and write its shard plan."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def plan_batch_job(
    input_uri: str,
    output_uri: str,
    inference_service: str,
    namespace: str,
    endpoint_url: str,
    model_name: str,
    model_uri: str,
    input_format: str,
    shard_size: int,
) -> list[int]:
    """Find the model, check the input, its fit to the model and the output location, then write the manifest.

    Args:
        input_uri: s3://bucket/prefix or a path (file or folder) of JSONL, CSV or Parquet.
        output_uri: s3://bucket/prefix or a path for one result file per shard, errors and the manifest.
        inference_service: InferenceService to call; its V2 endpoint is read from its status.
        namespace: Kubernetes namespace of the InferenceService.
        endpoint_url: Base URL of a V2 endpoint to call instead of looking the InferenceService up.
        model_name: V2 model name; empty for the InferenceService's name.
        model_uri: A model folder (path or s3://) the shards serve in their own pods instead of an endpoint.
        input_format: auto (from the file suffix), jsonl, csv or parquet.
        shard_size: Items per shard (one output file each).

    Returns:
        Shard indexes, one ParallelFor item each.
    """
    from aiserving.steps.batch_plan import plan_batch_step
    from batch_jobs.settings import JobParameters

    return plan_batch_step(
        JobParameters(
            input_uri=input_uri, output_uri=output_uri, inference_service=inference_service, namespace=namespace,
            endpoint_url=endpoint_url, model_name=model_name, model_uri=model_uri, input_format=input_format,
            shard_size=shard_size,
        )
    )  # fmt: skip
