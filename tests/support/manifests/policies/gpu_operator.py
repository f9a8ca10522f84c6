"""GPU Operator settings: ClusterPolicy references and the device-plugin / MIG / DCGM ConfigMaps."""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tests.support.manifests.objects import GPU_OPERATOR_NAMESPACE, Obj, name_of, namespace_of, of_kind, ref

_DCGM_FIELD = re.compile(r"\bDCGM_FI_[A-Z0-9_]+\b")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _PluginFlags(_Strict):
    passDeviceSpecs: bool | None = None
    deviceListStrategy: list[str] | str | None = None
    deviceIDStrategy: Literal["uuid", "index"] | None = None
    containerDriverRoot: str | None = None


class _Flags(_Strict):
    # Known keys of k8s-device-plugin api/config/v1 flags; renameByDefault does NOT belong here.
    migStrategy: Literal["none", "single", "mixed"] | None = None
    failOnInitError: bool | None = None
    nvidiaDriverRoot: str | None = None
    gdsEnabled: bool | None = None
    mofedEnabled: bool | None = None
    plugin: _PluginFlags | None = None


class _ReplicatedResource(_Strict):
    name: str
    replicas: int = Field(ge=2)  # replicas 1 is not how to disable sharing; drop "sharing" instead

    @field_validator("name")
    @classmethod
    def _shareable(cls, name: str) -> str:
        if name != "nvidia.com/gpu" and not name.startswith("nvidia.com/mig-"):
            raise ValueError(f"only nvidia.com/gpu and mixed-strategy MIG resources can be shared, not {name}")
        return name


class _Replicated(_Strict):
    renameByDefault: bool | None = None
    failRequestsGreaterThanOne: bool | None = None
    resources: list[_ReplicatedResource] = Field(min_length=1)


class _Sharing(_Strict):
    timeSlicing: _Replicated | None = None
    mps: _Replicated | None = None


class DevicePluginConfig(_Strict):
    """One device-plugin config value; unknown keys are errors because the plugin ignores them."""

    version: Literal["v1"]
    flags: _Flags | None = None
    sharing: _Sharing | None = None


class _MigLayout(_Strict):
    devices: Literal["all"] | list[int]
    mig_enabled: bool = Field(alias="mig-enabled")
    mig_devices: dict[str, int] | None = Field(default=None, alias="mig-devices")


class MigPartedConfig(_Strict):
    version: Literal["v1"]
    mig_configs: dict[str, list[_MigLayout]] = Field(alias="mig-configs")


def _config_map(objects: list[Obj], name: str | None) -> Obj | None:
    for config_map in of_kind(objects, "ConfigMap"):
        if name_of(config_map) == name and namespace_of(config_map) == GPU_OPERATOR_NAMESPACE:
            return config_map
    return None


def _spec_path(policy: Obj, *path: str) -> Any:
    value: Any = policy.get("spec", {})
    for key in path:
        value = (value or {}).get(key)
    return value


def check_device_plugin_config(objects: list[Obj]) -> list[str]:
    """Every config parses, uses only known keys, and the ClusterPolicy's references resolve."""
    problems = []
    for policy in of_kind(objects, "ClusterPolicy"):
        name = _spec_path(policy, "devicePlugin", "config", "name")
        default = _spec_path(policy, "devicePlugin", "config", "default")
        strategy = _spec_path(policy, "mig", "strategy")
        config_map = _config_map(objects, name)
        if config_map is None:
            problems.append(
                f"{ref(policy)}: device-plugin ConfigMap {name!r} is not in namespace {GPU_OPERATOR_NAMESPACE}"
            )
            continue
        data = config_map.get("data") or {}
        if default not in data:
            problems.append(
                f"{ref(policy)}: default device-plugin config {default!r} is not a key of {ref(config_map)}"
            )
        for key, text in data.items():
            try:
                config = DevicePluginConfig.model_validate(yaml.safe_load(text))
            except (yaml.YAMLError, ValidationError) as error:
                problems.append(f"{ref(config_map)}[{key}]: {error}")
                continue
            if config.flags and config.flags.migStrategy not in (None, strategy):
                problems.append(
                    f"{ref(config_map)}[{key}]: flags.migStrategy {config.flags.migStrategy} differs from "
                    f"ClusterPolicy mig.strategy {strategy}"
                )
            if config.sharing and config.sharing.timeSlicing and config.sharing.mps:
                problems.append(f"{ref(config_map)}[{key}]: time-slicing and MPS exclude each other")
    return problems


def check_mig_and_dcgm_config(objects: list[Obj]) -> list[str]:
    """The mig-parted and DCGM metric ConfigMaps exist, parse, and cover what the alerts use."""
    problems = []
    for policy in of_kind(objects, "ClusterPolicy"):
        mig = _config_map(objects, _spec_path(policy, "migManager", "config", "name"))
        if mig is None or "config.yaml" not in (mig.get("data") or {}):
            problems.append(
                f"{ref(policy)}: the mig-parted ConfigMap needs key config.yaml in {GPU_OPERATOR_NAMESPACE}"
            )
        else:
            try:
                layouts = MigPartedConfig.model_validate(yaml.safe_load(mig["data"]["config.yaml"])).mig_configs
            except (yaml.YAMLError, ValidationError) as error:
                problems.append(f"{ref(mig)}[config.yaml]: {error}")
            else:
                default = _spec_path(policy, "migManager", "config", "default")
                if default not in layouts:
                    problems.append(f"{ref(policy)}: default MIG layout {default!r} is not in {ref(mig)}")
        dcgm = _config_map(objects, _spec_path(policy, "dcgmExporter", "config", "name"))
        if dcgm is None or "dcgm-metrics.csv" not in (dcgm.get("data") or {}):
            problems.append(f"{ref(policy)}: the DCGM ConfigMap needs key dcgm-metrics.csv in {GPU_OPERATOR_NAMESPACE}")
            continue
        exported = _exported_fields(dcgm["data"]["dcgm-metrics.csv"])
        for rule_set in of_kind(objects, "PrometheusRule"):
            for group in rule_set.get("spec", {}).get("groups") or []:
                for rule in group.get("rules") or []:
                    for field in sorted(set(_DCGM_FIELD.findall(str(rule.get("expr", "")))) - exported):
                        problems.append(
                            f"{ref(rule_set)}: {rule.get('alert') or rule.get('record')} uses {field}, which "
                            f"{ref(dcgm)} does not export"
                        )
    return problems


def _exported_fields(text: str) -> set[str]:
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    return {row[0].strip() for row in rows if row and not row[0].lstrip().startswith("#")}
