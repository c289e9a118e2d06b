"""Reduced precision, measured: our stage with ``featurization.precision`` float32 and int8,
alternated in one process, with each backbone's interpreter ceiling, the classifier's test
accuracy on each's features, and where a core's milliseconds per image go.

``make benchmark ARGS=--precision`` (about 6 min at 4,750 images) merges these rows into the
last results; the full benchmark runs them too.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.baselines import interpreter_ceiling
from benchmarks.images import RawImages
from benchmarks.measure import warm_up
from benchmarks.project import Project, Stage
from fruits.datasets import PortableBackboneDataset
from fruits.vision.backbone import cpu_int8_support
from fruits.vision.embedder import load_embedder
from fruits.vision.images import preprocess_image

PRECISIONS = ("float32", "int8")
# Images timed one at a time, on one core, for the per-image breakdown.
BREAKDOWN_IMAGES = 300


def precision_rows(project: Project, raw: RawImages, cores: int, rounds: int = 2) -> dict:
    """Stage rate, ceiling and test accuracy per precision, and the per-image breakdown."""
    warm_up(project, raw.first_folder(project.workdir / "precision_warm_up"))
    runs: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    kept: dict[str, Any] = {}
    for _ in range(rounds):  # alternated: the machine's drift falls on both
        for name in PRECISIONS:
            keep = name not in kept
            run = project.run_stage(
                Stage(raw, featurization={"precision": name}, label=name, keep=keep)
            )
            runs[name].append(raw.count / run.seconds)
            if keep:
                kept[name] = run
            print(f"precision {name}: {runs[name][-1]:.1f} images/s", flush=True)
    rows = {}
    for name in PRECISIONS:
        data_root = kept[name].data_root
        backbone = PortableBackboneDataset(filepath=str(data_root / "06_models" / "backbone"))
        exported = backbone.load()
        params = project.runtime_params(raw, data_root, {"precision": name})
        project.run_pipelines(("reduction", "classification"), params)
        metrics = project.load("classification_metrics", data_root, raw)
        rows[name] = {
            "stage_images_per_s": float(np.mean(runs[name])),
            "runs_images_per_s": runs[name],
            "ceiling_images_per_s": interpreter_ceiling(exported, cores, 1, 10.0),
            "test_accuracy": metrics["accuracy"],
            "breakdown_ms": breakdown(exported, raw, cores, float(np.mean(runs[name]))),
        }
        project.discard(kept[name])
    return {"cpu_int8": cpu_int8_support(), "cores": cores, "rows": rows}


def breakdown(backbone: Any, raw: RawImages, cores: int, stage_rate: float) -> dict[str, float]:
    """A core's milliseconds per image: decoding and resizing, the interpreter, and the rest
    of the stage (file reads, hashing, Spark's tasks, Arrow, the Delta writes) as the
    difference with the stage's core-time per image."""
    files = raw.files[:: max(1, raw.count // BREAKDOWN_IMAGES)][:BREAKDOWN_IMAGES]
    contents = [path.read_bytes() for path in files]
    start = time.perf_counter()
    inputs = [preprocess_image(content, backbone.input_size) for content in contents]
    decode = (time.perf_counter() - start) / len(inputs) * 1e3
    embed = load_embedder(backbone, 1)
    embed(inputs[0][np.newaxis])
    start = time.perf_counter()
    for image in inputs:
        embed(image[np.newaxis])
    interpreter = (time.perf_counter() - start) / len(inputs) * 1e3
    stage = cores / stage_rate * 1e3
    return {
        "decode_resize": decode,
        "interpreter": interpreter,
        "rest_of_stage": stage - decode - interpreter,
        "stage_core_ms": stage,
    }


def precision_markdown(precision: dict[str, Any]) -> list[str]:
    """The section of BENCHMARKS.md."""
    rows = precision["rows"]
    reference = rows["float32"]
    lines = [
        "",
        "## Reduced precision (`featurization.precision`, our stage, same run)",
        "",
        f"`{precision.get('command', 'make benchmark ARGS=--precision')}`, "
        f"{precision.get('date', '')}: stage runs alternated float32, int8, float32, int8 "
        "(images/s of each run in brackets); ceiling: the interpreter alone on "
        f"{precision['cores']} cores; accuracy: the classifier trained and tested on each "
        "precision's features. "
        f"8-bit instructions of this CPU: {precision['cpu_int8']}.",
        "",
        "| precision | our stage, images/s | × float32 | ceiling, images/s | stage / ceiling "
        "| test accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        runs = ", ".join(f"{rate:.0f}" for rate in row["runs_images_per_s"])
        lines.append(
            f"| {name} | {row['stage_images_per_s']:.1f} ({runs}) "
            f"| {row['stage_images_per_s'] / reference['stage_images_per_s']:.2f} "
            f"| {row['ceiling_images_per_s']:.1f} "
            f"| {row['stage_images_per_s'] / row['ceiling_images_per_s']:.0%} "
            f"| {row['test_accuracy']:.2%} |"
        )
    lines += [
        "",
        "Where one core's milliseconds per image go (decoding + resizing and the interpreter "
        f"timed on {BREAKDOWN_IMAGES} real images one at a time; the rest is the stage's "
        "core-time per image minus both: reading and hashing the files, Spark's tasks, Arrow, "
        "the Delta writes):",
        "",
        "| precision | decode + resize | interpreter | rest of the stage | stage, core-ms/image |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        part = row["breakdown_ms"]
        lines.append(
            f"| {name} | {part['decode_resize']:.2f} | {part['interpreter']:.2f} "
            f"| {part['rest_of_stage']:.2f} | {part['stage_core_ms']:.2f} |"
        )
    return lines
