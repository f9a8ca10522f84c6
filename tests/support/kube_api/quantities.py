"""Kubernetes resource quantities (``500m``, ``16Gi``, ``1``): parsing, sums and canonical printing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Quantity:
    """An exact amount and whether it prints with binary (``Gi``) or decimal (``m``, ``k``) suffixes."""

    value: Fraction
    binary: bool = False

    def __add__(self, other: Quantity) -> Quantity:
        # Like resource.Quantity.Add: the sum keeps the left operand's format.
        return Quantity(self.value + other.value, self.binary or (self.value == 0 and other.binary))

    def __str__(self) -> str:
        if self.value == 0:
            return "0"
        if self.binary and self.value.denominator == 1:
            for suffix, factor in reversed(_BINARY.items()):
                if self.value % factor == 0:
                    return f"{self.value // factor}{suffix}"
            return str(self.value)
        for suffix, exponent in sorted(_DECIMAL.items(), key=lambda item: -item[1]):
            mantissa = self.value / Fraction(10) ** exponent
            if mantissa.denominator == 1:
                return f"{mantissa}{suffix}"
        return f"{round(self.value * 10**9)}n"


ZERO = Quantity(Fraction(0))


def parse_quantity(text: object) -> Quantity:
    """``"500m"`` → 0.5, ``"16Gi"`` → 16·2³⁰, ``2`` → 2.

    Raises:
        ValueError: not a quantity.
    """
    found = _QUANTITY.match(str(text).strip())
    if found is None:
        raise ValueError("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number = Fraction(found["number"])
    suffix = found["suffix"] or ""
    if suffix in _BINARY:
        return Quantity(number * _BINARY[suffix], binary=True)
    if suffix[:1] in ("e", "E"):
        return Quantity(number * Fraction(10) ** int(suffix[1:]))
    return Quantity(number * Fraction(10) ** _DECIMAL[suffix])
