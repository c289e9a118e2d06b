"""A PNG figure that is drawn again only when what it shows has changed."""

from __future__ import annotations

import logging

from kedro.io.core import get_filepath_str
from kedro_datasets.matplotlib import MatplotlibDataset
from matplotlib.figure import Figure
from PIL import Image, UnidentifiedImageError

from fruits.figures import FigurePlan

logger = logging.getLogger(__name__)

# The PNG text chunk that records what a saved figure was drawn from.
SOURCES_KEY = "fruits-sources"


class FigureDataset(MatplotlibDataset):
    """kedro-datasets' ``MatplotlibDataset`` (same arguments, same kedro-viz preview) that
    also takes a ``FigurePlan``: drawn and saved unless the saved PNG already records the
    plan's sources; then the file is left as it is.

    Example catalog entry::

        scree_plot:
          type: fruits.datasets.FigureDataset
          filepath: data/08_reporting/scree_plot.png
          save_args:
            dpi: 120
    """

    def save(self, data: FigurePlan | Figure) -> None:  # type: ignore[override]
        """Save a figure; draw and save a plan whose sources differ from the saved one's."""
        if not isinstance(data, FigurePlan):
            super().save(data)
            return
        if self.saved_sources() == data.sources:
            logger.info("Figure %s: drawn from the same inputs already, kept.", self._filepath)
            return
        base_args = self._save_args
        self._save_args = {**base_args, "metadata": {SOURCES_KEY: data.sources}}
        try:
            super().save(data.draw())
        finally:
            self._save_args = base_args

    def saved_sources(self) -> str | None:
        """The sources recorded in the saved PNG; None if there is none, or no record."""
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.exists(path):
            return None
        try:
            with self._fs.open(path, mode="rb") as file, Image.open(file) as image:
                return getattr(image, "text", {}).get(SOURCES_KEY)
        except (OSError, UnidentifiedImageError):
            return None  # unreadable: drawn again
