"""The trained models of an environment, from its Kedro catalog, for the prediction apps.

``fruits-predict`` and ``fruits-serve`` read the same catalog entries a ``kedro run``
wrote (``exported_backbone``, ``pca_model``, ``fruit_classifier``, ``fruit_info``),
wherever the environment puts them (local folder, S3), without starting Spark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fruits.errors import FruitsInputError
from fruits.ml.fruit_predictor import FruitPredictor
from fruits.model_manifest import load_local_models, missing


def _bootstrap(project_path: Path) -> Any:
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    if not (project_path / "pyproject.toml").is_file():
        raise FruitsInputError(
            f"{project_path} is not the fruits project: run from its folder or pass --project-path."
        )
    return bootstrap_project(project_path)


def load_catalog(project_path: Path, env: str, params: dict[str, Any]) -> Any:
    """The catalog of ``env`` (``params`` as ``kedro run --params``), nothing else.

    No hook runs, no JVM starts, and no pipeline is imported: a Kedro context would
    validate the pipelines' parameters first, importing every pipeline (matplotlib,
    Spark ML: a second of a command's start-up) for models that need none of them.
    """
    from kedro.config import MissingConfigException  # noqa: PLC0415
    from kedro.framework.context.context import (  # noqa: PLC0415
        _convert_paths_to_absolute_posix,
    )
    from kedro.framework.project import settings  # noqa: PLC0415

    _bootstrap(project_path)
    config_loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_path / settings.CONF_SOURCE),
        env=env,
        runtime_params=params,
        **settings.CONFIG_LOADER_ARGS,
    )
    # As KedroContext does: relative paths are the project's, not the working directory's.
    catalog = _convert_paths_to_absolute_posix(project_path, config_loader["catalog"])
    try:
        credentials = config_loader["credentials"]
    except MissingConfigException:
        credentials = {}
    return settings.DATA_CATALOG_CLASS.from_config(catalog=catalog, credentials=credentials)


def load_context(project_path: Path, env: str, params: dict[str, Any]) -> Any:
    """The project's Kedro context for ``env``, its hooks run as in ``kedro run``.

    The project's Spark session (``conf/<env>/spark.yml``) is started.
    """
    from kedro.framework.session import KedroSession  # noqa: PLC0415

    _bootstrap(project_path)
    session = KedroSession.create(project_path=project_path, env=env, runtime_params=params)
    return session.load_context()


def load_predictor(catalog: Any, **settings: Any) -> FruitPredictor:
    """A ``FruitPredictor`` on the catalog's models; ``settings`` are its serving settings.

    The classifier and PCA are read first: a missing model is reported at once.
    """
    models = load_local_models(catalog)
    backbone_dataset = catalog.get("exported_backbone")
    try:
        backbone = backbone_dataset.load()
    except FileNotFoundError as error:
        raise missing("exported_backbone", backbone_dataset) from error
    fruit_info = catalog.load("fruit_info").to_dict("records")
    return FruitPredictor(
        backbone, models["pca_model"], models["fruit_classifier"], fruit_info, **settings
    )
