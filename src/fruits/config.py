"""The project's configuration loader: Kedro's, with shared layers between environments,
refusing run-time parameters no file uses.

Layers: an environment may read shared folders between ``base`` and itself (settings'
``CONFIG_LOADER_ARGS["layers"]``): ``emr``, ``ec2`` and ``azure`` read ``conf/cloud`` (the layout
under one storage root), ``emr`` and ``ec2`` also ``conf/aws`` (S3 root, region, encryption), so
what they share is written once and each keeps only what differs.

``kedro run --params=raw_image_path=/data`` (a typo of ``raw_images_path``) would
otherwise run on the default images and exit 0. A run-time parameter must be a
parameter section (``reduction.k=50``) or a name the configuration reads through
``${runtime_params:...}`` (``data_root``, ``raw_images_path``...); any other name stops
the run before it starts, naming the closest known one. ``fruits-predict`` and
``fruits-serve`` build their catalog with the same loader.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from fruits.errors import FruitsInputError
from fruits.params import closest
from fruits.spark.class_archive import java_options

# The names read with ${runtime_params:NAME} or ${runtime_params:NAME, default}.
_RUNTIME_NAME = re.compile(r"\$\{runtime_params:\s*([A-Za-z_][\w-]*)")


class ProjectConfigLoader(OmegaConfigLoader):
    """``OmegaConfigLoader`` with shared layers, checking run-time parameter names when created.

    Args:
        layers: For an environment, the shared folders (under the configuration source)
            read after ``base`` and before the environment itself, in order. Files of the
            environment override those of its layers, key by key.
    """

    def __init__(
        self,
        *args: Any,
        runtime_params: dict[str, Any] | None = None,
        layers: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ):
        self._layers = dict(layers or {})
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

    def _read_raw_config(self, key: str) -> tuple[dict, dict, str, str, set]:
        # Kedro merges and resolves each layer's files together: the shared layers' files
        # join the environment's, first, so the environment's override them and may refer
        # to their values (${storage_root}).
        base, env, base_path, env_path, processed = super()._read_raw_config(key)
        run_env = self.env or self.default_run_env
        shared: dict = {}
        for layer in self._layers.get(run_env, []):
            shared.update(
                self._read_dir_configs(
                    self._get_conf_env_path(layer),
                    [*self.config_patterns[key]],
                    key,
                    processed,
                    key == "credentials",
                )
            )
        return base, {**shared, **env}, base_path, env_path, processed

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


def memory_share(fraction: float) -> str:
    """``fraction`` of this machine's physical memory, in Spark's notation (``"12288m"``).

    For ``spark.driver.memory`` in local mode on a machine sized for the run (conf/ec2).
    """

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{int(total * float(fraction)) >> 20}m"


def _setup_roots() -> tuple[Path, ...]:
    """Where `make setup`'s ``.jars`` may be: the working directory upwards (a `kedro run`
    in the project, a notebook in notebooks/), then the project this package is installed from.
    """
    here = Path.cwd().resolve()
    return (here, *here.parents, Path(__file__).resolve().parents[2])


def project_jars(folder: str) -> str:
    """The jars `make setup` fetched into ``.jars/<folder>``, as ``spark.jars`` takes them."""
    for root in _setup_roots():
        jars = sorted((root / ".jars" / folder).glob("*.jar"))
        if jars:
            return ",".join(str(jar) for jar in jars)
    raise FruitsInputError(
        f"no jars in .jars/{folder}: run `make setup` in the project, which fetches them."
    )


def class_archive() -> str:
    """The local driver JVM's options for the class archive `make setup` recorded in
    ``.jars/cds`` (``fruits.spark.class_archive``): empty when there is none."""
    for root in _setup_roots():
        if (root / ".jars").is_dir():
            return java_options(root / ".jars" / "cds")
    return ""
