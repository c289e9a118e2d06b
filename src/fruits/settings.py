"""Project settings (see https://docs.kedro.org/ for the defaults)."""

from fruits.config import ProjectConfigLoader, class_archive, memory_share, project_jars
from fruits.hooks import (
    EarlyPythonWorkers,
    InputChecks,
    ModelManifestHook,
    NodeTimer,
    OneWriter,
    RunSummary,
    SparkHooks,
)

# Spark first: the input checks list the raw images with Spark. OneWriter's lock is taken
# once they passed (trylast), before any node.
HOOKS = (
    SparkHooks(),
    OneWriter(),
    InputChecks(),
    NodeTimer(),
    EarlyPythonWorkers(),
    RunSummary(),
    ModelManifestHook(),
)

# Kedro's OmegaConfigLoader, refusing unknown run-time parameter names (fruits.config).
CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "spark": ["spark*", "spark*/**"],
    },
    # Deep-merge parameters across base, the run environment and --params: without it,
    # `--params=reduction.k=50` would replace the whole `reduction` dict of conf/base.
    "merge_strategy": {"parameters": "soft"},
    # Shared folders read after conf/base, before the environment's own: conf/cloud (the layout
    # under one storage root), conf/aws (S3 root, EU region, encryption).
    "layers": {"emr": ["cloud", "aws"], "ec2": ["cloud", "aws"], "azure": ["cloud"]},
    # ${memory_share:0.5}: half of this machine's memory (conf/ec2/spark.yml);
    # ${project_jars:delta}: the jars `make setup` put in .jars/delta (conf/local/spark.yml);
    # ${class_archive:}: the driver JVM's class archive `make setup` recorded (same file).
    "custom_resolvers": {
        "memory_share": memory_share,
        "project_jars": project_jars,
        "class_archive": class_archive,
    },
}
