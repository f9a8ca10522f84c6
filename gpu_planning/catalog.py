"""The GPU catalog as data: memory, MIG profiles with their placement rules, time-slicing limits.

MIG facts come from NVIDIA's Multi-Instance GPU user guide, "Supported MIG Profiles"
(https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html): each MIG-capable GPU has
7 compute slices and 8 memory slices; a profile takes ``g`` compute slices and a fixed run of memory slices that may
start only at the listed positions (the placements ``nvidia-smi mig -lgipp`` prints). A layout is valid when its
profiles' memory runs do not overlap and their compute slices add up to at most 7.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from serving_core.errors import InvalidInputError

COMPUTE_SLICES = 7
MEMORY_SLICES = 8


class MigProfile(BaseModel):
    """One GPU-instance profile: its compute slices, its run of memory slices and where that run may start."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="e.g. 1g.10gb, as in nvidia.com/mig-<name>")
    compute_slices: int
    memory_slices: int
    placements: tuple[int, ...] = Field(description="memory-slice positions where an instance may start")
    memory_mib: int = Field(description="memory_slices / 8 of the GPU's memory: the guide's 'fraction of memory'")

    @property
    def max_count(self) -> int:
        """The most instances of this profile one GPU can hold."""
        return max(len(layout) for layout in _disjoint_runs(self.placements, self.memory_slices))


class GpuProduct(BaseModel):
    """One GPU model: what the catalog knows about it."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="the catalog key, e.g. A100-80GB")
    gfd_products: tuple[str, ...] = Field(description="nvidia.com/gpu.product values GFD reports for it")
    memory_mib: int = Field(description="total memory as nvidia-smi reports it")
    mig_profiles: tuple[MigProfile, ...] = ()
    max_time_slices: int = Field(description="our cap on time-sliced shares per GPU (see docs/gpu-planning.md)")

    @property
    def mig_capable(self) -> bool:
        """Whether the GPU can be partitioned with MIG."""
        return bool(self.mig_profiles)

    def profile(self, name: str) -> MigProfile:
        """The MIG profile called ``name`` on this GPU.

        Raises:
            InvalidInputError: the GPU has no such profile.
        """
        for profile in self.mig_profiles:
            if profile.name == name:
                return profile
        known = ", ".join(p.name for p in self.mig_profiles) or "none: it does not support MIG"
        raise InvalidInputError(f"{self.name} has no MIG profile {name!r}", hint=f"use one of its profiles ({known})")


def _disjoint_runs(placements: tuple[int, ...], size: int) -> list[tuple[int, ...]]:
    """Every set of non-overlapping starts of runs of ``size`` memory slices (for max_count)."""
    layouts: list[tuple[int, ...]] = [()]
    for start in placements:
        layouts += [(*layout, start) for layout in layouts if all(abs(start - other) >= size for other in layout)]
    return layouts


def _seven_slice_profiles(memory_mib: int, names: tuple[str, ...]) -> tuple[MigProfile, ...]:
    # The A100, H100 and H200 share one geometry (MIG user guide, "Supported MIG Profiles", profile figures):
    # 1g (1/8 memory) at 0..6; 1g with 2/8 memory at 0,2,4,6; 2g at 0,2,4; 3g at 0,4; 4g at 0; 7g at 0.
    geometry = ((1, 1, (0, 1, 2, 3, 4, 5, 6)), (1, 2, (0, 2, 4, 6)), (2, 2, (0, 2, 4)), (3, 4, (0, 4)), (4, 4, (0,)))
    profiles = [
        MigProfile(
            name=name,
            compute_slices=compute,
            memory_slices=memory,
            placements=placements,
            memory_mib=memory_mib * memory // MEMORY_SLICES,
        )
        for name, (compute, memory, placements) in zip(names[:5], geometry, strict=True)
    ]
    profiles.append(
        MigProfile(name=names[5], compute_slices=7, memory_slices=8, placements=(0,), memory_mib=memory_mib)
    )
    return tuple(profiles)


def _product(
    name: str, gfd: tuple[str, ...], memory_mib: int, max_time_slices: int, mig: tuple[str, ...] | None = None
) -> GpuProduct:
    profiles = _seven_slice_profiles(memory_mib, mig) if mig is not None else ()
    return GpuProduct(
        name=name, gfd_products=gfd, memory_mib=memory_mib, mig_profiles=profiles, max_time_slices=max_time_slices
    )


# Memory: nvidia-smi's total for each board. Time-slice caps are our policy, not NVIDIA limits: every share is a
# CUDA context of its own (~0.5 GiB) and CUDA gives each an equal slice, so latency grows with the count.
CATALOG: dict[str, GpuProduct] = {
    product.name: product
    for product in (
        _product("T4", ("Tesla-T4", "NVIDIA-T4"), 15360, 4),
        _product("L4", ("NVIDIA-L4",), 23034, 4),
        _product("L40S", ("NVIDIA-L40S",), 46068, 8),
        _product(
            "A100-40GB",
            ("NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-PCIE-40GB"),
            40960,
            8,
            ("1g.5gb", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
        ),
        _product(
            "A100-80GB",
            ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-80GB-PCIe"),
            81920,
            8,
            ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
        ),
        _product(
            "H100-80GB",
            ("NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"),
            81559,
            8,
            ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
        ),
        _product(
            "H200-141GB",
            ("NVIDIA-H200", "NVIDIA-H200-NVL"),
            143771,
            8,
            ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
        ),
    )
}


def gpu_product(name: str) -> GpuProduct:
    """The catalog entry for ``name`` (a catalog key or a GFD product label).

    Raises:
        InvalidInputError: the catalog has no such GPU.
    """
    for product in CATALOG.values():
        if name == product.name or name in product.gfd_products:
            return product
    raise InvalidInputError(f"unknown GPU product {name!r}", hint=f"use one of {', '.join(CATALOG)}")


@cache
def _fits(product_name: str, profile_counts: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...] | None:
    product = CATALOG[product_name]
    wanted = [product.profile(name) for name, count in profile_counts for _ in range(count)]
    if sum(profile.compute_slices for profile in wanted) > COMPUTE_SLICES:
        return None
    # Place the longest runs first: they have the fewest positions, so the search fails fast.
    wanted.sort(key=lambda profile: (-profile.memory_slices, len(profile.placements)))
    placed: list[tuple[str, int]] = []

    def place(index: int, used: int) -> bool:
        if index == len(wanted):
            return True
        profile = wanted[index]
        for start in profile.placements:
            run = ((1 << profile.memory_slices) - 1) << start
            if not used & run:
                placed.append((profile.name, start))
                if place(index + 1, used | run):
                    return True
                placed.pop()
        return False

    return tuple(sorted(placed, key=lambda item: item[1])) if place(0, 0) else None


def mig_placement(product: GpuProduct, profiles: Iterable[str]) -> tuple[tuple[str, int], ...] | None:
    """Where each profile starts when ``profiles`` fit on one GPU together, else None."""
    return _fits(product.name, tuple(sorted(Counter(profiles).items())))


def validate_mig_layout(product: GpuProduct, profiles: list[str]) -> tuple[tuple[str, int], ...]:
    """Check that ``profiles`` form a layout the GPU allows and return each one's placement.

    Raises:
        InvalidInputError: a profile is unknown on this GPU, or the profiles cannot be placed together.
    """
    if not product.mig_capable:
        raise InvalidInputError(
            f"{product.name} does not support MIG, so MIG layout {profiles} is impossible",
            hint="drop mig_layout for this node or use an A100, H100 or H200",
        )
    for name in profiles:
        product.profile(name)
    placement = mig_placement(product, profiles)
    if placement is None:
        compute = sum(product.profile(name).compute_slices for name in profiles)
        raise InvalidInputError(
            f"MIG layout {profiles} is impossible on {product.name}: "
            + (
                f"it needs {compute} compute slices of {COMPUTE_SLICES}"
                if compute > COMPUTE_SLICES
                else "the profiles' memory slices cannot be placed without overlap"
            ),
            hint="choose a layout from the MIG user guide's 'Supported MIG Profiles' for this GPU, "
            "e.g. 3g + 2g + 1g + 1g",
        )
    return placement
