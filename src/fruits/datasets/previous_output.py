"""Read access to the last run's version of an output, or None before there is one."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError


class PreviousOutputDataset(AbstractDataset[None, Any]):
    """Wraps another dataset's configuration; loads it if it exists, else returns None.

    For nodes that decide from what the last run left (the reduction reuses its model
    when its input has not changed). Read-only: the output itself is saved under its
    own catalog entry, after this one was read.

    Example catalog entry::

        previous_explained_variance:
          type: fruits.datasets.PreviousOutputDataset
          dataset:
            type: json.JSONDataset
            filepath: data/08_reporting/explained_variance.json
    """

    def __init__(self, *, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self._dataset = AbstractDataset.from_config("previous_output", dict(dataset))
        self.metadata = metadata

    def load(self) -> Any:
        """The wrapped dataset's data, or None when it was never saved."""
        return self._dataset.load() if self._dataset.exists() else None

    def save(self, data: Any) -> None:
        """Refuse: the output is saved through its own entry."""
        raise DatasetError("PreviousOutputDataset is read-only.")

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}
