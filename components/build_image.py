"""Component: build and push the serving image without a Docker daemon."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def build_image(package: dsl.Input[dsl.Model], image: str, image_format: str, insecure_registry: bool) -> str:
    """Append the package as one layer to a base image and push it, digest-pinned.

    Registry credentials come from the docker config.json mounted from a Kubernetes secret
    (REGISTRY_AUTH_FILE), never from parameters.

    Args:
        package: The verified package directory.
        image: Target REGISTRY/REPO:TAG, or oci-layout:PATH[:TAG] for an OCI layout directory.
        image_format: modelcar (busybox base, for storageUri oci://) or predictor (our model-server base).
        insecure_registry: Talk plain HTTP to the registry (for in-cluster test registries only).

    Returns:
        The pushed image as REF@sha256:DIGEST.
    """
    from aiserving.steps.build_image import build_image_step

    return build_image_step(
        package=package, image=image, image_format=image_format, insecure_registry=insecure_registry
    )
