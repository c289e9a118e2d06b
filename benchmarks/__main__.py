"""``python -m benchmarks``: every row in one invocation, then BENCHMARKS.md and results.json.

Order: the interpreter ceiling and (a) plain Keras, (b) the classic template, (d) `kedro
run` in new processes (no Spark of ours running meanwhile), then our stage in this
process: a warm-up, (c) alternated with (a), the prediction service, the settings rows,
the scaling and input size rows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import REPO
from benchmarks.baselines import (
    classic_template,
    interpreter_ceiling,
    plain_keras,
    spark_defaults_session,
)
from benchmarks.cold_runs import ColdRows
from benchmarks.images import RawImages
from benchmarks.incremental import incremental_rows
from benchmarks.machine import machine, spark_job_latency
from benchmarks.measure import Scaling, size_rows, tuning_rows, warm_up
from benchmarks.plan import ImageSets, Plan, parse_args
from benchmarks.precision import precision_rows
from benchmarks.project import (
    Project,
    ProjectSettings,
    Stage,
    quiet_project_logs,
    running_spark,
    stop_spark,
)
from benchmarks.report import markdown
from benchmarks.serving import ServingPlan, serving_rows
from benchmarks.sizing import ec2_sizing, emr_sizing
from fruits.datasets import BackboneWeightsDataset
from fruits.vision.backbone import PortableBackbone, export_backbone


@dataclass
class Bench:
    """One benchmark invocation: what it runs on, and the results so far."""

    plan: Plan
    project: Project
    settings: ProjectSettings
    images: ImageSets
    weights: list[np.ndarray]
    backbone: PortableBackbone
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.images.main.count

    @property
    def input_size(self) -> int:
        return self.settings.params["featurization"].input_size

    def row(self, name: str, seconds: float | None, rate: float | None = None) -> dict:
        rate = rate if rate is not None else self.n / seconds
        row = {"images_per_s": rate} | ({"seconds": seconds} if seconds else {})
        self.results["rows"][name] = row
        print(f"{name:>18}: {rate:7.1f} images/s", flush=True)
        return row


def start(args: Any, plan: Plan, workdir: Path) -> Bench:
    """The project's settings (its first Spark session starts), images, weights, backbone."""
    project = Project(args.weights, workdir, args.sha256)
    quiet_project_logs()  # after the project's bootstrap, which applies conf/logging.yml
    settings = project.settings()
    images = plan.image_sets(args, settings.image_filter, workdir)
    weights = BackboneWeightsDataset(source=str(args.weights), sha256=args.sha256).load().arrays()
    input_size = settings.params["featurization"].input_size
    export_start = time.perf_counter()
    backbone = export_backbone(weights, input_size, "tflite")
    results = {
        "command": plan.command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "n_images": images.main.count,
        "input_size": input_size,
        "backbone_export_s": time.perf_counter() - export_start,
        "rows": {},
    }
    return Bench(plan, project, settings, images, weights, backbone, results)


def baseline_rows(bench: Bench) -> float:
    """The ceiling and (b); (a)'s first run, whose rate is returned."""
    batch_size = bench.settings.params["featurization"].batch_size
    cores = os.cpu_count() or 1
    ceiling = interpreter_ceiling(bench.backbone, cores, batch_size, bench.plan.ceiling_seconds)
    bench.row("ceiling", None, ceiling)
    keras_rate = plain_keras(bench.images.main.files, bench.weights, bench.input_size)
    stop_spark()  # the project's session: (b) gets a session of Spark's defaults
    spark = spark_defaults_session(bench.settings.spark)
    load_args = bench.settings.raw_images.get("load_args") or {}
    seconds = classic_template(spark, bench.images.main, load_args, bench.weights, bench.input_size)
    bench.row("classic_template", seconds)
    spark.stop()
    return keras_rate


def cold_rows(bench: Bench, weights: Path) -> None:
    """(d): `kedro run` in new processes; no Spark session of ours alive meanwhile."""
    raw, project = bench.images.main, bench.project
    cold = ColdRows(
        raw.path, weights, project.workdir, bench.plan.kedro_runs, bench.plan.kedro_variants
    )
    row, bench.results["kedro_run_variants_s"] = cold.measure(
        lambda data_root: project.load("explained_variance", data_root, raw)["k"]
    )
    bench.row("kedro_run", row["seconds"]).update(row)


def stage_rows(bench: Bench, keras_first: float) -> None:
    """(c) after a warm-up, alternated with (a)'s second run: a, c, a, c."""
    raw, project = bench.images.main, bench.project
    warm_up(project, raw.first_folder(project.workdir / "warm_up_images"))
    runs = [project.run_stage(Stage(raw))]
    keras_rates = [keras_first, plain_keras(raw.files, bench.weights, bench.input_size)]
    runs.append(project.run_stage(Stage(raw)))
    bench.row("plain_keras", bench.n / float(np.mean(keras_rates)))
    bench.results["rows"]["plain_keras"]["runs_images_per_s"] = keras_rates
    row = bench.row("our_stage", float(np.mean([run.seconds for run in runs])))
    row["runs_images_per_s"] = [bench.n / run.seconds for run in runs]
    row["nodes_s"] = {
        name: float(np.mean([run.nodes.get(name, np.nan) for run in runs]))
        for name in runs[0].nodes
    }


def more_rows(bench: Bench) -> None:
    """The settings rows, then (unless --quick) Spark's job latency, scaling and sizes."""
    plan, project, results = bench.plan, bench.project, bench.results
    results["tuning"] = tuning_rows(project, bench.images.main, plan.tuning)
    sizes = plan.scaling_sizes(bench.images, project.workdir)
    if sizes:
        results["job_latency_ms"] = spark_job_latency(running_spark())
        print("empty Spark jobs, ms:", results["job_latency_ms"], flush=True)
        reduction = bench.settings.params["reduction"]
        results["scaling"] = Scaling(project, reduction, plan.scaling_rounds).rows(sizes)
    if plan.sizes:
        results["sizes"] = size_rows(project, bench.images.whole, plan.sizes)


def write(results: dict[str, Any], output: Path) -> None:
    (output / "benchmarks").mkdir(parents=True, exist_ok=True)
    (output / "benchmarks" / "results.json").write_text(json.dumps(results, indent=2))
    report = markdown(results)
    (output / "BENCHMARKS.md").write_text(report)
    print(report)
    print(f"Written: {output / 'BENCHMARKS.md'}, {output / 'benchmarks' / 'results.json'}")


def incremental(args: Any, output: Path, workdir: Path) -> None:
    """Only the re-run rows, merged into the last full run's results."""
    filter_ = Project(args.weights, workdir, args.sha256).settings().image_filter
    stop_spark()  # each row is a `kedro run` of its own
    main_images = RawImages.listed([args.images], filter_)
    sets = [main_images, main_images.combined(RawImages.listed([args.more_images], filter_))]
    results = json.loads((output / "benchmarks" / "results.json").read_text())
    results["incremental"] = incremental_rows(sets, args.weights, workdir)
    results["incremental"]["command"] = "make benchmark ARGS=--incremental"
    results["incremental"]["date"] = time.strftime("%Y-%m-%d")
    # Its own machine: the rest of the file may come from another run on another machine.
    results["incremental"]["machine"] = machine()
    write(results, output)


def precision(args: Any, output: Path, workdir: Path) -> None:
    """Only the reduced-precision rows, merged into the last full run's results."""
    project = Project(args.weights, workdir, args.sha256)
    quiet_project_logs()
    images = RawImages.listed([args.images], project.settings().image_filter)
    results = json.loads((output / "benchmarks" / "results.json").read_text())
    results["precision"] = precision_rows(project, images, os.cpu_count() or 1)
    results["precision"]["command"] = "make benchmark ARGS=--precision"
    results["precision"]["date"] = time.strftime("%Y-%m-%d")
    write(results, output)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.incremental or args.precision:
        workdir = Path(tempfile.mkdtemp(prefix="fruits-bench-"))
        (incremental if args.incremental else precision)(args, args.output or REPO, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    plan = Plan.from_args(args)
    output = args.output or (
        Path(tempfile.mkdtemp(prefix="fruits-bench-smoke-")) if args.smoke else REPO
    )
    workdir = Path(tempfile.mkdtemp(prefix="fruits-bench-"))
    bench = start(args, plan, workdir)
    keras_first = baseline_rows(bench)
    cold_rows(bench, args.weights)
    stage_rows(bench, keras_first)
    bench.results["serving"] = serving_rows(
        bench.project,
        bench.images.main,
        args.weights,
        bench.backbone,
        ServingPlan(plan.service_requests),
    )
    more_rows(bench)
    cores = os.cpu_count() or 1
    bench.results["precision"] = precision_rows(bench.project, bench.images.main, cores)
    bench.results["precision"]["command"] = plan.command
    stop_spark()
    if bench.images.more is not None:
        sets = [bench.images.whole, bench.images.whole.combined(bench.images.more)]
        bench.results["incremental"] = incremental_rows(sets, args.weights, workdir / "re-runs")
    stage_rate = bench.results["rows"]["our_stage"]["images_per_s"]
    bench.results["emr"] = emr_sizing(stage_rate, cores)
    bench.results["ec2"] = ec2_sizing(stage_rate, cores)
    write(bench.results, output)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
