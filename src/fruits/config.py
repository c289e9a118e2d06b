"""The project's configuration loader: Kedro's, refusing run-time parameters no file uses.

``kedro run --params=raw_image_path=/data`` (a typo of ``raw_images_path``) would
otherwise run on the default images and exit 0. A run-time parameter must be a
parameter section (``reduction.k=50``) or a name the configuration reads through
``${runtime_params:...}`` (``data_root``, ``raw_images_path``...); any other name stops
the run before it starts, naming the closest known one. ``fruits-predict`` and
``fruits-serve`` build their catalog with the same loader.
"""

from __future__ import annotations

import re
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from fruits.errors import FruitsInputError
from fruits.params import closest

# The names read with ${runtime_params:NAME} or ${runtime_params:NAME, default}.
_RUNTIME_NAME = re.compile(r"\$\{runtime_params:\s*([A-Za-z_][\w-]*)")


class ProjectConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` that checks the run-time parameters' names when created."""

    def __init__(self, *args: Any, runtime_params: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, runtime_params=runtime_params, **kwargs)
        if not runtime_params:
            return
        known = sorted(self.runtime_parameter_names())
        unknown = sorted(set(runtime_params) - set(known))
        if unknown:
            raise FruitsInputError(
                "; ".join(
                    f"unknown parameter `{name}`"
                    f"{closest(name, known) or ': remove it or fix its spelling'}"
                    for name in unknown
                )
            )

    def runtime_parameter_names(self) -> set[str]:
        """The parameter sections and every name a file reads with ``runtime_params:``."""
        names: set[str] = set()
        for key in self.config_patterns:
            try:
                # Kedro's own reading of the files (archives and remote sources included),
                # before interpolation: the ${runtime_params:...} references are still there.
                base, env, *_ = self._read_raw_config(key)
            except Exception:  # noqa: BLE001, S112 - a key without files (credentials)
                continue
            for config in (*base.values(), *env.values()):
                names.update(_RUNTIME_NAME.findall(OmegaConf.to_yaml(config, resolve=False)))
                if key == "parameters":
                    names.update(str(section) for section in config)
        return names
