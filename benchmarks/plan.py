"""How much of the benchmark runs (full, ``--quick``, ``--smoke``) and on which images."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import benchmarks
from benchmarks import SHARED
from benchmarks.cold_runs import KEDRO_RUN_VARIANTS, KEDRO_RUNS
from benchmarks.images import ImageFilter, RawImages
from benchmarks.measure import TUNING_NAMES

DEFAULT_WEIGHTS = SHARED / "models" / "mobilenet_v2_1.0_224_no_top.reconstructed.h5"
DEFAULT_SIZES = "224,160,128,96"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=benchmarks.__doc__.split("\n")[0],
    )
    parser.add_argument("--images", type=Path, default=SHARED / "data" / "fruits-360")
    parser.add_argument("--more-images", type=Path, default=SHARED / "data" / "fruits-360-bench")
    parser.add_argument(
        "--weights", type=Path, default=DEFAULT_WEIGHTS,
        help="MobileNetV2 no-top .h5 weights (a file of a known name is checked against "
        "its known sha256 by the project's BackboneWeightsDataset)",
    )  # fmt: skip
    parser.add_argument(
        "--sha256", default=None, help="expected sha256 of --weights (default: the known one)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1,000 images; no scaling or sizes")
    mode.add_argument(
        "--incremental", action="store_true",
        help="only the re-run rows (--images, then --images + --more-images; about 25 min), "
        "merged into the last results.json and BENCHMARKS.md",
    )  # fmt: skip
    mode.add_argument(
        "--precision", action="store_true",
        help="only the reduced-precision rows on --images (float32 and int8 stages, ceilings, "
        "test accuracy, per-image breakdown; about 6 min), merged into the last results",
    )  # fmt: skip
    mode.add_argument(
        "--smoke", action="store_true",
        help="a few images of 3 classes, every part once (about 3 min): checks that the "
        "benchmark runs; its figures mean nothing. Writes to a temporary folder by default",
    )  # fmt: skip
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="input sizes to compare")
    parser.add_argument(
        "--output", type=Path, default=None,
        help="where BENCHMARKS.md and benchmarks/results.json go (default: the repository)",
    )  # fmt: skip
    return parser.parse_args(argv)


@dataclass(frozen=True)
class ImageSets:
    """The image sets of the rows, listed as the catalog's raw_images lists them."""

    # Rows (a) to (d) and the settings rows: --quick's first 1,000, or all of --images.
    main: RawImages
    # All of --images: the input sizes, and the middle size of the scaling rows.
    whole: RawImages
    # --more-images, added to --images for the largest scaling size (None: no scaling).
    more: RawImages | None


@dataclass(frozen=True)
class Plan:
    """What runs, and how many times."""

    command: str
    # --quick: the first images of --images (copied: Spark reads exactly them).
    limit: int | None = None
    # --smoke: the first classes, and images per class folder, of each image folder.
    smoke_classes: int | None = None
    smoke_per_folder: int = 0
    kedro_runs: int = KEDRO_RUNS
    kedro_variants: tuple[str, ...] = tuple(KEDRO_RUN_VARIANTS)
    tuning: tuple[str, ...] = TUNING_NAMES
    # Rounds of the scaling rows (each round runs every size once); 0: no scaling rows.
    scaling_rounds: int = 3
    # The scaling rows' smallest size: the first images of --images.
    scaling_subset: int = 1000
    sizes: tuple[int, ...] = ()
    ceiling_seconds: float = 10.0
    # Single-photo requests of the prediction service's throughput and memory row.
    service_requests: int = 10_000

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            return cls(
                "make benchmark ARGS=--quick",
                limit=1000,
                tuning=TUNING_NAMES[:2],
                scaling_rounds=0,
                service_requests=2_000,
            )
        if args.smoke:
            return cls(
                "make benchmark ARGS=--smoke",
                smoke_classes=3,
                smoke_per_folder=6,
                kedro_runs=1,
                kedro_variants=tuple(KEDRO_RUN_VARIANTS)[:1],
                tuning=(TUNING_NAMES[0], "batch_size 8", "arrow.maxRecordsPerBatch 64"),
                scaling_rounds=1,
                scaling_subset=12,
                sizes=(96,),
                ceiling_seconds=2.0,
                service_requests=200,
            )
        sizes = tuple(int(size) for size in args.sizes.split(","))
        return cls("make benchmark", sizes=sizes)

    def image_sets(
        self, args: argparse.Namespace, image_filter: ImageFilter, workdir: Path
    ) -> ImageSets:
        images = RawImages.listed([args.images], image_filter)
        if self.smoke_classes:
            sample = (self.smoke_classes, self.smoke_per_folder)
            whole = images.per_class(*sample, workdir / "images")
            more = RawImages.listed([args.more_images], image_filter)
            return ImageSets(whole, whole, more.per_class(*sample, workdir / "more_images"))
        if self.limit:
            return ImageSets(images.first(self.limit, workdir / "images"), images, None)
        more = RawImages.listed([args.more_images], image_filter) if self.scaling_rounds else None
        return ImageSets(images, images, more)

    def scaling_sizes(self, sets: ImageSets, workdir: Path) -> list[RawImages]:
        """The first ``scaling_subset`` images, all of --images, --images + --more-images."""
        if sets.more is None:
            return []
        subset = sets.whole.first(self.scaling_subset, workdir / "scaling_subset")
        return [subset, sets.whole, sets.whole.combined(sets.more)]
