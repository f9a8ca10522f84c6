"""Credentials reach steps through Kubernetes secrets, never as plain parameters."""

from kfp import dsl, kubernetes

REGISTRY_SECRET_MOUNT = "/var/run/secrets/aiserving/registry"
# A kubernetes.io/dockerconfigjson secret stores the docker config.json under this key.
REGISTRY_AUTH_FILE = f"{REGISTRY_SECRET_MOUNT}/.dockerconfigjson"


def with_mlflow_credentials(task: dsl.PipelineTask, secret_name: str) -> dsl.PipelineTask:
    """Expose the MLflow secret's keys as MLflow's own environment variables (all optional)."""
    return kubernetes.use_secret_as_env(
        task,
        secret_name=secret_name,
        secret_key_to_env={
            "tracking_uri": "MLFLOW_TRACKING_URI",
            "username": "MLFLOW_TRACKING_USERNAME",
            "password": "MLFLOW_TRACKING_PASSWORD",
            "token": "MLFLOW_TRACKING_TOKEN",
        },
        optional=True,
    )


def with_registry_credentials(task: dsl.PipelineTask, secret_name: str) -> dsl.PipelineTask:
    """Mount the registry's docker config secret and point the image builder at it."""
    kubernetes.use_secret_as_volume(task, secret_name=secret_name, mount_path=REGISTRY_SECRET_MOUNT, optional=True)
    return task.set_env_variable("REGISTRY_AUTH_FILE", REGISTRY_AUTH_FILE)


def with_storage_credentials(task: dsl.PipelineTask, secret_name: str) -> dsl.PipelineTask:
    """Expose the object-storage secret's keys as the variables boto3 and KServe's storage initializer read."""
    return kubernetes.use_secret_as_env(
        task,
        secret_name=secret_name,
        secret_key_to_env={key: key for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")},
        optional=True,
    )
