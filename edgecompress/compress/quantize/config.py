"""`QuantizeConfig`: how one target's artifact is quantized; frozen, validated, torch-free."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from edgecompress.compress.config import (
    FieldError,
    check_choice,
    check_types,
    option,
    parse_max_drop,
)


class CalibrationMethod(StrEnum):  # which a format offers: targets/profiles.py
    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


@dataclass(frozen=True)
class QuantizeConfig:
    """How to quantize for one target. `max_drop` is in accuracy points (1.0 = one point) unless
    `relative`, then a fraction of the fp32 dev accuracy (0.01 = 1 %); None: no fallback."""

    target: str = option(help="Target name or profile .toml path.")
    scheme: str | None = option(None, help="Quantization scheme (default: the target's own).")
    calibration_samples: int | None = option(None, help="Calibration sentences (default: the "
                                                        "target's).")
    calibration_method: str | None = option(None, choices=CalibrationMethod,
                                            help="Calibration method (default: the target's).")
    calibration_split: str = option("train", help="Split the calibration sentences come from.")
    max_drop: float | None = option(None, parse=parse_max_drop, sets=("max_drop", "relative"),
                                    help="Max dev accuracy drop: points (1.0) or relative "
                                         "('2%'); keeps layers in float.")
    relative: bool = option(False, cli=False, help="max_drop is relative (set by its '%').")
    dev_split: str = option("dev", help="Split the accuracy fallback evaluates on.")
    dev_samples: int | None = option(None, help="Cap on dev sentences for max_drop.")
    seed: int = option(0, help="Seed of the calibration sample.")

    def __post_init__(self) -> None:
        check_types(self)
        if self.max_drop is not None and not self.max_drop >= 0:
            raise FieldError("max_drop", f"expected a number >= 0, got {self.max_drop}")
        for name in ("calibration_samples", "dev_samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise FieldError(name, f"expected >= 1, got {value}")
        if self.calibration_method is not None:
            check_choice("calibration_method", self.calibration_method, CalibrationMethod)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)
