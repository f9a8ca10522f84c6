"""Component: package a downloaded MLflow model for a serving runtime."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def package_model(
    model: dsl.Input[dsl.Model],
    runtime: str,
    package_name: str,
    max_batch_size: int,
    instance_kind: str,
    package: dsl.Output[dsl.Model],
) -> str:
    """Package an MLflow model in the layout its KServe serving runtime expects under /mnt/models.

    Args:
        model: The MLflow model directory from resolve-model.
        runtime: Serving runtime: triton, torchserve, tfserving or python (our MLflow wrapper).
        package_name: Model name inside the runtime; empty to derive it from the registered model name.
        max_batch_size: Largest batch the runtime may form (Triton max_batch_size, TorchServe batchSize).
        instance_kind: Where the runtime places model instances: gpu or cpu.
        package: The package directory; metadata holds runtime, modelFormat, protocol and digests.

    Returns:
        The package digest (sha256 over the package contents).
    """
    from aiserving.steps.package import package_step

    return package_step(
        model=model, runtime=runtime, package_name=package_name, max_batch_size=max_batch_size,
        instance_kind=instance_kind, package=package,
    )  # fmt: skip
