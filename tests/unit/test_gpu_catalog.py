from __future__ import annotations

import pytest

from gpu_planning.catalog import CATALOG, MigProfile, gpu_product, mig_placement, validate_mig_layout
from serving_core.errors import InvalidInputError


def test_a100_40gb_profiles_follow_the_mig_user_guide() -> None:
    assert gpu_product("NVIDIA-A100-SXM4-40GB").mig_profiles == (
        MigProfile(name="1g.5gb", compute_slices=1, memory_slices=1, placements=(0, 1, 2, 3, 4, 5, 6), memory_mib=5120),
        MigProfile(name="1g.10gb", compute_slices=1, memory_slices=2, placements=(0, 2, 4, 6), memory_mib=10240),
        MigProfile(name="2g.10gb", compute_slices=2, memory_slices=2, placements=(0, 2, 4), memory_mib=10240),
        MigProfile(name="3g.20gb", compute_slices=3, memory_slices=4, placements=(0, 4), memory_mib=20480),
        MigProfile(name="4g.20gb", compute_slices=4, memory_slices=4, placements=(0,), memory_mib=20480),
        MigProfile(name="7g.40gb", compute_slices=7, memory_slices=8, placements=(0,), memory_mib=40960),
    )


def test_catalog_covers_the_products_and_their_instance_counts() -> None:
    counts = {name: [(p.name, p.max_count) for p in product.mig_profiles] for name, product in CATALOG.items()}

    assert counts == {
        "T4": [],
        "L4": [],
        "L40S": [],
        "A100-40GB": [("1g.5gb", 7), ("1g.10gb", 4), ("2g.10gb", 3), ("3g.20gb", 2), ("4g.20gb", 1), ("7g.40gb", 1)],
        "A100-80GB": [("1g.10gb", 7), ("1g.20gb", 4), ("2g.20gb", 3), ("3g.40gb", 2), ("4g.40gb", 1), ("7g.80gb", 1)],
        "H100-80GB": [("1g.10gb", 7), ("1g.20gb", 4), ("2g.20gb", 3), ("3g.40gb", 2), ("4g.40gb", 1), ("7g.80gb", 1)],
        "H200-141GB": [
            ("1g.18gb", 7), ("1g.35gb", 4), ("2g.35gb", 3), ("3g.71gb", 2), ("4g.71gb", 1), ("7g.141gb", 1)
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("profiles", "placement"),
    [
        (["4g.40gb", "3g.40gb"], (("4g.40gb", 0), ("3g.40gb", 4))),
        (
            ["2g.20gb", "2g.20gb", "2g.20gb", "1g.10gb"],
            (("2g.20gb", 0), ("2g.20gb", 2), ("2g.20gb", 4), ("1g.10gb", 6)),
        ),
        (["3g.40gb", "1g.20gb", "1g.20gb"], (("3g.40gb", 0), ("1g.20gb", 4), ("1g.20gb", 6))),
        (["4g.40gb", "4g.40gb"], None),  # only one start for 4g
        (["3g.40gb", "3g.40gb", "1g.10gb"], None),  # memory slices all taken by the two 3g
        (["4g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"], None),  # slices would fit, but 8 compute slices of 7
    ],
)
def test_mig_placement_keeps_to_starts_and_slices(profiles: list[str], placement: object) -> None:
    assert mig_placement(gpu_product("A100-80GB"), profiles) == placement


def test_an_impossible_layout_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidInputError) as error:
        validate_mig_layout(gpu_product("H100-80GB"), ["4g.40gb", "4g.40gb"])

    assert str(error.value) == (
        "MIG layout ['4g.40gb', '4g.40gb'] is impossible on H100-80GB: it needs 8 compute slices of 7\n"
        "Hint: choose a layout from the MIG user guide's 'Supported MIG Profiles' for this GPU, e.g. 3g + 2g + 1g + 1g"
    )


def test_mig_on_a_gpu_without_mig_and_unknown_names_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"L4 does not support MIG, so MIG layout \['1g.5gb'\] is impossible"):
        validate_mig_layout(gpu_product("L4"), ["1g.5gb"])
    with pytest.raises(InvalidInputError, match=r"A100-40GB has no MIG profile '1g.20gb'"):
        validate_mig_layout(gpu_product("A100-40GB"), ["1g.20gb"])
    with pytest.raises(InvalidInputError) as error:
        gpu_product("V100")
    assert str(error.value) == (
        "unknown GPU product 'V100'\nHint: use one of T4, L4, L40S, A100-40GB, A100-80GB, H100-80GB, H200-141GB"
    )
