"""The TorchScript front that lets a column-signature pytorch model take one tensor per column.

Kept apart because it imports torch at module level (a ``torch.nn.Module`` subclass needs it).
"""

from __future__ import annotations

from typing import Any

import torch


class ColumnsToMatrix(torch.nn.Module):
    """Stack 1-D column tensors into the float32 matrix MLflow's pyfunc feeds a pytorch model.

    MLflow turns a DataFrame into ``frame.to_numpy(dtype=float32)``; casting each column to float32 and
    stacking them as columns gives the same matrix, so the served model predicts exactly like MLflow.
    """

    def __init__(self, model: Any) -> None:
        """Wrap ``model``, which takes one ``rows x columns`` float32 tensor."""
        super().__init__()
        self.model = model

    def forward(self, *columns: torch.Tensor) -> Any:
        """Predict on one tensor per column, in signature order."""
        return self.model(torch.stack([column.to(torch.float32) for column in columns], dim=1))
