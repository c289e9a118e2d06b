"""Project settings (see https://docs.kedro.org/ for the defaults)."""

from kedro.config import OmegaConfigLoader

from fruits.hooks import SparkHooks

HOOKS = (SparkHooks(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "spark": ["spark*", "spark*/**"],
    },
}
