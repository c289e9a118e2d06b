"""Re-runs that cost what is new: ``kedro run`` (every pipeline, new process) on a growing
folder, against a full run of the same images, at two sizes.

For each image set: a first run on 90% of the images (every tenth file held back), then
the 10% added (a "10% new" run), then a run with nothing new, then a full run of the whole
set on a fresh data root; the 10% new run (from a copy of the 90% data root), the full run
and the nothing-new run once more, in that order. Then nothing-new runs on each set in
turn, twice. Each figure is the mean of the runs alternated so: these cores drift by up to
2x within an hour, and a ratio of runs minutes apart, not alternated, moved by 0.1 from one
invocation to the next. Ratios are taken within one invocation (``make benchmark
ARGS=--incremental``, or as part of the full benchmark).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from statistics import mean
from typing import Any

from benchmarks.cold_runs import ColdRun, kedro_run
from benchmarks.images import RawImages

# Each kind of run is measured this many times, alternated with the other kinds.
ROUNDS = 2


def _report(data_root: Path) -> dict[str, Any]:
    return json.loads((data_root / "08_reporting" / "featurization_report.json").read_text())


def _backbone_written(data_root: Path) -> float:
    return (data_root / "06_models" / "backbone" / "backbone.json").stat().st_mtime


def _timed(raw: Path, weights: Path, data_root: Path) -> dict[str, Any]:
    """One ``kedro run`` of every pipeline: its seconds and what its report says it read."""
    seconds = kedro_run(ColdRun(str(raw), weights, data_root, pipelines=None))["seconds"]
    report = _report(data_root)
    return {
        "seconds": seconds,
        "image_files": report["image_files"],
        "files_read": report["files_read"],
        "raw_bytes_read": report["raw_bytes_read"],
        "contents_new": report["contents_new"],
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs of one kind: the last one's counts, the mean and each run's seconds."""
    return {**runs[-1], "seconds": mean(run["seconds"] for run in runs),
            "each_seconds": [run["seconds"] for run in runs]}  # fmt: skip


def incremental_row(images: RawImages, weights: Path, workdir: Path) -> dict[str, Any]:
    """The runs on ``images`` (copied under ``workdir``): seconds, bytes read, CNN work."""
    held = set(images.files[::10])
    raw = workdir / "raw"
    images.copy([path for path in images.files if path not in held], raw)
    data, before_new = workdir / "data", workdir / "data_90_percent"
    name = f"{images.count} images"
    first = _timed(raw, weights, data)
    print(f"{name}, first_90_percent: {first['seconds']:.1f} s", flush=True)
    shutil.copytree(data, before_new)
    images.copy(sorted(held), raw)
    runs: dict[str, list[dict[str, Any]]] = {"ten_percent_new": [], "nothing_new": [], "full": []}
    exported = None
    for round_ in range(ROUNDS):
        if round_:  # back to the 90% data root: the same 10% are new again
            shutil.rmtree(data)
            shutil.copytree(before_new, data)
        for kind in ("ten_percent_new", "full", "nothing_new"):
            if kind == "nothing_new":
                exported = _backbone_written(data)
            root = workdir / f"data_full_{round_}" if kind == "full" else data
            runs[kind].append(_timed(raw, weights, root))
            if kind == "nothing_new":
                runs[kind][-1]["backbone_exported"] = _backbone_written(data) != exported
            print(f"{name}, {kind}: {runs[kind][-1]['seconds']:.1f} s", flush=True)
    row = {
        "n_images": images.count,
        "runs": {"first_90_percent": first, **{kind: _summary(r) for kind, r in runs.items()}},
        "raw": str(raw),
        "data": str(data),
    }
    full = row["runs"]["full"]["seconds"]
    row["nothing_new_ratio"] = row["runs"]["nothing_new"]["seconds"] / full
    row["ten_percent_new_ratio"] = row["runs"]["ten_percent_new"]["seconds"] / full
    return row


def incremental_rows(sets: list[RawImages], weights: Path, workdir: Path) -> dict[str, Any]:
    """``incremental_row`` for each set, and how the nothing-new run grows with the total
    (from nothing-new runs of the sets in turn)."""
    rows = [incremental_row(images, weights, workdir / f"set_{i}") for i, images in enumerate(sets)]
    result: dict[str, Any] = {"sets": rows}
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        turns: dict[int, list[float]] = {0: [], 1: []}
        for _ in range(ROUNDS):
            for index, row in enumerate((small, large)):
                run = _timed(Path(row["raw"]), weights, Path(row["data"]))
                turns[index].append(run["seconds"])
                print(f"{row['n_images']} images, nothing_new (in turn): {run['seconds']:.1f} s")
        result["nothing_new_in_turn"] = {
            str(small["n_images"]): turns[0],
            str(large["n_images"]): turns[1],
        }
        result["nothing_new_growth"] = mean(turns[1]) / mean(turns[0])
    for row in rows:  # where they ran: gone with the work directory
        del row["raw"], row["data"]
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
    repeated = [row for row in incremental["sets"] if "each_seconds" in row["runs"]["full"]]
    if repeated:  # older results measured each kind once
        lines += [
            "",
            f"Each figure is the mean of {ROUNDS} runs alternated with the other kinds (10% "
            "new, full, nothing new, ...). Each run, s:",
            "",
        ]
    for row in repeated:
        each = ", ".join(
            f"{kind.replace('_', ' ')} {' / '.join(f'{s:.1f}' for s in run['each_seconds'])}"
            for kind, run in row["runs"].items()
            if "each_seconds" in run
        )
        lines.append(f"- {row['n_images']:,} images: {each}")
    if "nothing_new_growth" in incremental:
        small, large = incremental["sets"][0]["n_images"], incremental["sets"][-1]["n_images"]
        turns = incremental.get("nothing_new_in_turn", {})  # absent from older results
        how = (
            f" (nothing-new runs of the two sets in turn, after the rows above: {small:,}: "
            f"{' / '.join(f'{s:.1f}' for s in turns[str(small)])} s; {large:,}: "
            f"{' / '.join(f'{s:.1f}' for s in turns[str(large)])} s)"
            if turns
            else ""
        )
        lines += [
            "",
            f"Nothing new at {large:,} images / at {small:,}: "
            f"**{incremental['nothing_new_growth']:.2f}**{how}.",
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
