"""Re-runs that cost what is new: ``kedro run`` (every pipeline, new process) on a growing
folder, against a full run of the same images, at two sizes.

For each image set: a first run on 90% of the images (every tenth file held back), then
the 10% added (a "10% new" run), then a run with nothing new, then a full run of the whole
set on a fresh data root. Ratios are taken within one invocation (``make benchmark
ARGS=--incremental``, or as part of the full benchmark).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.cold_runs import ColdRun, kedro_run
from benchmarks.images import RawImages


def _report(data_root: Path) -> dict[str, Any]:
    return json.loads((data_root / "08_reporting" / "featurization_report.json").read_text())


def _backbone_written(data_root: Path) -> float:
    return (data_root / "06_models" / "backbone" / "backbone.json").stat().st_mtime


def incremental_row(images: RawImages, weights: Path, workdir: Path) -> dict[str, Any]:
    """The four runs on ``images`` (copied under ``workdir``): seconds, bytes read, CNN work."""
    held = set(images.files[::10])
    raw = workdir / "raw"
    images.copy([path for path in images.files if path not in held], raw)
    data = workdir / "data"
    runs: dict[str, Any] = {}

    def timed(name: str, data_root: Path = data) -> None:
        seconds = kedro_run(ColdRun(str(raw), weights, data_root, pipelines=None))["seconds"]
        report = _report(data_root)
        runs[name] = {
            "seconds": seconds,
            "image_files": report["image_files"],
            "files_read": report["files_read"],
            "raw_bytes_read": report["raw_bytes_read"],
            "contents_new": report["contents_new"],
        }
        print(f"{images.count} images, {name}: {seconds:.1f} s", flush=True)

    timed("first_90_percent")
    images.copy(sorted(held), raw)
    timed("ten_percent_new")
    exported = _backbone_written(data)
    timed("nothing_new")
    runs["nothing_new"]["backbone_exported"] = _backbone_written(data) != exported
    timed("full", workdir / "data_full")
    full = runs["full"]["seconds"]
    return {
        "n_images": images.count,
        "runs": runs,
        "nothing_new_ratio": runs["nothing_new"]["seconds"] / full,
        "ten_percent_new_ratio": runs["ten_percent_new"]["seconds"] / full,
    }


def incremental_rows(sets: list[RawImages], weights: Path, workdir: Path) -> dict[str, Any]:
    """``incremental_row`` for each set, and how the nothing-new run grows with the total."""
    rows = [incremental_row(images, weights, workdir / f"set_{i}") for i, images in enumerate(sets)]
    result: dict[str, Any] = {"sets": rows}
    if len(rows) > 1:
        small, large = rows[0]["runs"]["nothing_new"], rows[-1]["runs"]["nothing_new"]
        result["nothing_new_growth"] = large["seconds"] / small["seconds"]
    return result


def incremental_markdown(incremental: dict[str, Any]) -> list[str]:
    """The section of BENCHMARKS.md."""
    lines = [
        "",
        "## Re-runs: what is new, not what is there (Delta tables, `kedro run`, every pipeline)",
        "",
        "Per image set: a first run on 90% of the images, the other 10% added (**10% new**), "
        "a run with **nothing new**, and a **full** run of the whole set on a fresh data root. "
        "Each a new `kedro run` process (cold). Targets: nothing new <= 0.25 x full, 10% new "
        "<= 0.40 x full, nothing new at ~20,000 images <= 1.3 x at 4,750.",
        *_measured_on(incremental),
        "",
        "| images | full, s | 10% new, s (ratio) | nothing new, s (ratio) | raw bytes read: "
        "full / 10% new / nothing new | CNN on, 10% new / nothing new | backbone exported "
        "when nothing new |",
        "|---:|---:|---:|---:|---|---|---|",
    ]
    for row in incremental["sets"]:
        runs = row["runs"]
        full, ten, nothing = runs["full"], runs["ten_percent_new"], runs["nothing_new"]
        lines.append(
            f"| {row['n_images']:,} | {full['seconds']:.1f} | {ten['seconds']:.1f} "
            f"({row['ten_percent_new_ratio']:.2f}) | {nothing['seconds']:.1f} "
            f"({row['nothing_new_ratio']:.2f}) | {full['raw_bytes_read']:,} / "
            f"{ten['raw_bytes_read']:,} / {nothing['raw_bytes_read']:,} | "
            f"{ten['contents_new']:,} / {nothing['contents_new']:,} | "
            f"{'yes' if nothing['backbone_exported'] else 'no'} |"
        )
    if "nothing_new_growth" in incremental:
        lines += [
            "",
            f"Nothing new at {incremental['sets'][-1]['n_images']:,} images / at "
            f"{incremental['sets'][0]['n_images']:,}: **{incremental['nothing_new_growth']:.2f}**.",
        ]
    return lines


def _measured_on(incremental: dict[str, Any]) -> list[str]:
    """Where and when these rows were measured, if apart from the rest (``--incremental``)."""
    m = incremental.get("machine")
    if not m:
        return []
    return [
        "",
        f"Measured by `{incremental['command']}` on {incremental['date']}, on {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gb']} GB RAM (the other sections may come from "
        "another run).",
    ]
