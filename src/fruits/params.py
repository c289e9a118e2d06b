"""Each pipeline's parameters as one typed, validated object.

Nodes declare these types on their ``params:<pipeline>`` inputs; Kedro's parameter
validation (``kedro.validation``) builds them from ``conf/<env>/parameters_*.yml`` and
``--params`` once, when the run's catalog is created, for the pipelines that run, and
fails the run before any node starts. ``fruits.cli`` prints each problem as one line.
Unknown keys are refused: a typo never runs silently with the default.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from fruits.errors import FruitsInputError
from fruits.vision.backbone import FEATURE_DIM, INPUT_SIZES, RUNTIMES

# on_change: refit only when the model's input rows or its settings changed (a re-run
# leaves every output identical); always: refit every run.
RefitPolicy = Literal["on_change", "always"]
PositiveInt = Annotated[int, Field(ge=1)]


class ParameterError(FruitsInputError):
    """A parameter has a wrong value or name; the message is one line per problem."""


class PipelineParams(BaseModel):
    """Strict, immutable, no unknown keys; errors name ``<section>.<key>``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    # Where these parameters live in conf, to name them in errors.
    SECTION: ClassVar[str] = ""

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate, turning pydantic's report into one line per bad parameter."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as error:
            raise ParameterError(describe(cls.SECTION, error, list(cls.model_fields))) from None


def closest(name: str, known: list[str]) -> str:
    """``; did you mean `x`?`` for the known name closest to ``name``, or nothing."""
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean `{matches[0]}`?" if matches else ""


def describe(section: str, error: ValidationError, fields: list[str] | None = None) -> str:
    """``section.key=value: what is wrong`` for each problem, joined with "; ".

    ``fields`` are the section's parameter names, to suggest the closest to a misspelt one.
    """
    problems = []
    for problem in error.errors(include_url=False):
        name = ".".join(str(part) for part in (section, *problem["loc"]) if part != "")
        if problem["type"] == "extra_forbidden":
            top_level = len(problem["loc"]) == 1
            hint = closest(str(problem["loc"][-1]), fields or []) if top_level else ""
            problems.append(
                f"unknown parameter `{name}`{hint or ': remove it or fix its spelling'}"
            )
        elif problem["type"] == "missing":
            problems.append(f"parameter {name} is missing: add it to parameters_{section}.yml")
        else:
            problems.append(f"{name}={problem['input']!r}: {problem['msg']}")
    return "; ".join(problems)


class IngestionParams(PipelineParams):
    """``parameters_ingestion.yml``."""

    SECTION = "ingestion"
    # A class folder's parent with one of these names gives the image's split.
    split_folders: list[str]
    # Any other image gets a split from its content hash: about this share the test split.
    unsplit_test_share: Annotated[float, Field(gt=0, lt=1)]
    # The splits those images get (the classifier's training and test splits).
    unsplit_train_split: str
    unsplit_test_split: str


class FeaturizationParams(PipelineParams):
    """``parameters_featurization.yml``."""

    SECTION = "featurization"
    runtime: Literal[RUNTIMES]  # type: ignore[valid-type]
    input_size: Literal[INPUT_SIZES]  # type: ignore[valid-type]
    precision: Literal["float32", "bfloat16", "int8"]
    calibration_images: PositiveInt
    batch_size: PositiveInt
    images_per_partition: PositiveInt
    threads_per_worker: PositiveInt

    @field_validator("precision")
    @classmethod
    def _offered_by_the_runtime(cls, precision: str, info: ValidationInfo) -> str:
        if precision == "bfloat16":
            raise ValueError(
                "no runtime of this project computes MobileNetV2 in bfloat16 (LiteRT's x86 "
                "kernels have none; it pays on AMX CPUs through OpenVINO, not used here): "
                "use int8 (runtime tflite) or float32"
            )
        if precision == "int8" and info.data.get("runtime") != "tflite":
            raise ValueError("int8 needs runtime tflite (Keras has no int8 path): set both")
        return precision


class ReductionParams(PipelineParams):
    """``parameters_reduction.yml``."""

    SECTION = "reduction"
    standardize: bool
    variance_target: Annotated[float, Field(gt=0, le=1)]
    k: Annotated[int, Field(ge=1, le=FEATURE_DIM)] | None
    refit: RefitPolicy
    refit_change_share: Annotated[float, Field(ge=0, le=1)]

    @property
    def settings(self) -> dict[str, Any]:
        """What decides the fitted model (the refit policy aside)."""
        return {"standardize": self.standardize, "variance_target": self.variance_target,
                "k": self.k}  # fmt: skip


class ClassificationParams(PipelineParams):
    """``parameters_classification.yml``."""

    SECTION = "classification"
    train_split: str
    test_split: str
    reg_params: Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]
    search_parallelism: PositiveInt
    elastic_net_param: Annotated[float, Field(ge=0, le=1)]
    max_iter: PositiveInt
    tol: Annotated[float, Field(gt=0)]
    train_ratio: Annotated[float, Field(gt=0, lt=1)]
    seed: int
    refit: RefitPolicy

    @property
    def settings(self) -> dict[str, Any]:
        """What decides the trained model (the refit policy aside)."""
        return self.model_dump(exclude={"refit", "test_split", "search_parallelism"})


class SampleImagesParams(PipelineParams):
    """``reporting.sample_images``."""

    SECTION = "reporting.sample_images"
    max_classes: PositiveInt
    per_class: PositiveInt


class PcaScatterParams(PipelineParams):
    """``reporting.pca_scatter``."""

    SECTION = "reporting.pca_scatter"
    max_points: PositiveInt
    seed: int


def validate_parameters(parameters: dict[str, Any]) -> None:
    """Validate every pipeline's section of a merged ``parameters`` configuration at once,
    as a run would (for launchers, before anything is launched).

    Raises:
        ParameterError: One line per bad or unknown parameter.
    """
    problems = []
    for model in PipelineParams.__subclasses__():
        section: Any = parameters
        for part in model.SECTION.split("."):
            section = section.get(part, {}) if isinstance(section, dict) else {}
        try:
            model.model_validate(section)
        except ParameterError as error:
            problems.append(str(error))
    if problems:
        raise ParameterError("; ".join(problems))
