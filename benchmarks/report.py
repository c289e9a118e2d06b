"""BENCHMARKS.md from the results (the dictionary written to benchmarks/results.json)."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.incremental import incremental_markdown
from benchmarks.precision import precision_markdown
from benchmarks.sizing import ec2_markdown, emr_markdown, int8_markdown

# The rows of the main table: key in results["rows"], what it measures.
ROWS = {
    "ceiling": "TFLite interpreter alone, ready inputs, default batch size, all cores",
    "plain_keras": "(a) plain Keras, one process: decode + predict_on_batch (32)",
    "classic_template": "(b) classic Spark template: model per task, Keras predict",
    "our_stage": "(c) our stage (ingestion + featurization nodes, Parquet written), warm",
    "kedro_run": "(d) `kedro run --env local` ingestion+featurization+reduction, cold",
}
# The scaling table's spans, each containing the previous one.
SCALING_SPANS = {
    "feature_store": "feature store (`update_feature_store`: CNN job, store written)",
    "featurization": "featurization (+ `publish_features`: the `image_features` view)",
    "stage": "stage (+ `update_image_table`: `images` written; as row (c))",
}


def markdown(results: dict[str, Any]) -> str:
    lines = header(results) + main_table(results) + main_notes(results)
    lines += kedro_run_variants(results["kedro_run_variants_s"])
    if results.get("tuning"):
        lines += tuning_table(results["tuning"])
    if results.get("scaling"):
        lines += scaling_markdown(results["scaling"], results.get("job_latency_ms"))
    if results.get("sizes"):
        lines += sizes_table(results["sizes"])
    if results.get("serving"):
        lines += serving_table(results["serving"], results["rows"]["our_stage"]["images_per_s"])
    if results.get("precision"):
        lines += precision_markdown(results["precision"])
    if results.get("incremental"):
        lines += incremental_markdown(results["incremental"])
    lines += ["", emr_markdown(results["emr"]), ""]
    if results.get("ec2"):
        lines += [ec2_markdown(results["ec2"]), ""]
    if results.get("precision"):
        rows = results["precision"]["rows"]
        speedup = rows["int8"]["stage_images_per_s"] / rows["float32"]["stage_images_per_s"]
        stage_rate = results["rows"]["our_stage"]["images_per_s"]
        lines += [int8_markdown(stage_rate, speedup, results["precision"]["cores"]), ""]
    return "\n".join(lines)


def header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    return [
        "# Benchmarks",
        "",
        f"Produced by `{results['command']}` on {results['date']}.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['os']}; Python "
        f"{m['python']}, TensorFlow {m['tensorflow']}, PySpark {m['pyspark']}. No GPU.",
        "",
        "Cloud cores here drift (the same code measured up to 2x apart within an hour): compare",
        "rows of one run, not runs. The interpreter ceiling row is measured in the same run.",
    ]


def main_table(results: dict[str, Any]) -> list[str]:
    rows = results["rows"]
    keras_rate = rows["plain_keras"]["images_per_s"]
    lines = [
        "",
        f"## Featurization, {results['n_images']} images, {results['input_size']}x"
        f"{results['input_size']}",
        "",
        "| row | what | seconds | images/s | vs plain Keras |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for key, label in ROWS.items():
        row = rows[key]
        seconds = f"{row['seconds']:.1f}" if "seconds" in row else "-"
        lines.append(
            f"| {key} | {label} | {seconds} | {row['images_per_s']:.1f} | "
            f"{row['images_per_s'] / keras_rate:.2f}x |"
        )
    return lines


def _rates(rates: list[float]) -> str:
    return ", ".join(f"{rate:.1f}" for rate in rates)


def main_notes(results: dict[str, Any]) -> list[str]:
    rows = results["rows"]
    lines = [
        "",
        f"Backbone export (Keras to TFLite, on the driver, once per run): "
        f"{results['backbone_export_s']:.1f} s.",
        f"`kedro run` peak memory (JVM + driver + Python workers, summed RSS): "
        f"{rows['kedro_run']['peak_rss_mb']:.0f} MB; chosen k = {rows['kedro_run']['k']}.",
        "",
        "Rows (a) and (c) are each the mean of two runs, measured alternately (a, c, a, c):",
        f"(a) {_rates(rows['plain_keras']['runs_images_per_s'])} images/s; "
        f"(c) {_rates(rows['our_stage']['runs_images_per_s'])} images/s.",
        "Row (c) runs the ingestion and featurization pipelines with `KedroSession.run` in this",
        "process (env local: the project's catalog, hooks and settings, SequentialRunner; a",
        "fresh `data_root` per run), after a warm-up run on one class folder (JVM code paths",
        "and Python workers started), and times the stage's nodes as the project's NodeTimer",
        "logs them (`update_image_table`, `update_feature_store`, `publish_features`: `images`",
        "and the feature store read and written by the catalog, `image_features` a view of",
        "them): the stage's",
        "steady rate. Reading the weights and the TFLite export, a fixed cost per run on the",
        "driver, are in row (d). Row (d) is a new process from start to exit (Python, JVM,",
        "weights, TFLite export, every write, PCA), the mean of "
        f"{len(rows['kedro_run']['runs_s'])} runs with the defaults.",
    ]
    nodes = rows["our_stage"].get("nodes_s")
    if nodes:
        listed = ", ".join(f"`{name}` {seconds:.1f} s" for name, seconds in nodes.items())
        lines += [
            "",
            "Where row (c)'s time goes (the project's NodeTimer hook, saves included, mean of",
            f"the runs; one node at a time): {listed}.",
        ]
    return lines


def kedro_run_variants(variants: dict[str, list[float]]) -> list[str]:
    lines = [
        "",
        "`kedro run` with one setting changed (runs alternated with the defaults'):",
        "",
        "| kedro run | runs, s | mean s |",
        "| --- | --- | ---: |",
    ]
    for name, runs in variants.items():
        listed = ", ".join(f"{s:.1f}" for s in runs)
        lines.append(f"| {name} | {listed} | {np.mean(runs):.1f} |")
    return lines


def tuning_table(tuning: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "## Settings: our stage with one parameter changed at a time",
        "",
        "Each row is a `session.run` with the parameter passed as a runtime parameter (as",
        "`--params` does), or the Spark setting changed for the run.",
        "",
        "| setting | images/s | vs defaults |",
        "| --- | ---: | ---: |",
    ]
    base = tuning[0]["images_per_s"]
    for row in tuning:
        lines.append(
            f"| {row['setting']} | {row['images_per_s']:.1f} | {row['images_per_s'] / base:.2f}x |"
        )
    return lines


def sizes_table(sizes: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "## Input size: speed against accuracy (our stage with `featurization.input_size` "
        "changed; then the reduction and classification pipelines: classifier trained on "
        "Training, scored on Test)",
        "",
        "| input size | images/s | Test top-1 accuracy |",
        "| ---: | ---: | ---: |",
    ]
    for row in sizes:
        lines.append(f"| {row['input_size']} | {row['images_per_s']:.1f} | {row['accuracy']:.2%} |")
    return lines


def scaling_markdown(
    scaling: list[dict[str, Any]], job_latency: dict[str, float] | None
) -> list[str]:
    """The scaling table: ms per image of each size, against the largest size's."""
    largest = scaling[-1]
    in_turn = ", ".join(f"{row['images']:,}" for row in [*scaling, scaling[0]])
    lines = [
        "",
        "## Scaling: cost per image as the work grows",
        "",
        "Three spans of our stage, each containing the previous one: "
        + "; ".join(SCALING_SPANS.values())
        + f". Each size is run {len(largest['runs_stage_s'])} times, the sizes in turn "
        f"({in_turn}, ...); medians. \"vs largest\": ms per image against the largest run's.",
        "",
        "| images | "
        + " | ".join(f"{span.replace('_', ' ')} ms/image | vs largest" for span in SCALING_SPANS)
        + " | Spark jobs | PCA fit s | k |",
        "| ---: " * (3 + 2 * len(SCALING_SPANS)) + "| ---: |",
    ]  # fmt: skip
    lines += [scaling_row(row, largest) for row in scaling]
    lines += scaling_fit(scaling)
    if job_latency:
        lines += job_latency_note(scaling, job_latency)
    lines += ["", "Runs, seconds (feature store; featurization; stage):", ""]
    for row in scaling:
        lines.append(
            f"- {row['images']}: "
            + "; ".join(
                ", ".join(f"{s:.2f}" for s in row[f"runs_{span}_s"]) for span in SCALING_SPANS
            )
        )
    return lines


def scaling_row(row: dict[str, Any], largest: dict[str, Any]) -> str:
    cells = [str(row["images"])]
    for span in SCALING_SPANS:
        ms = 1000 * row[f"{span}_s"] / row["images"]
        largest_ms = 1000 * largest[f"{span}_s"] / largest["images"]
        cells += [f"{ms:.2f}", f"{ms / largest_ms - 1:+.0%}"]
    cells += [str(row.get("jobs", "")), f"{row['pca_fit_s']:.1f}", str(row["k"])]
    return "| " + " | ".join(cells) + " |"


def scaling_fit(scaling: list[dict[str, Any]]) -> list[str]:
    """seconds = fixed + n x per-image, fitted through the rows: what a run costs
    before its first image (job planning, shuffles, Parquet commits)."""
    n = [row["images"] for row in scaling]
    lines = ["", "A line through the rows (seconds = fixed + n x per image):", ""]
    for span in SCALING_SPANS:
        per_image, fixed = np.polyfit(n, [row[f"{span}_s"] for row in scaling], 1)
        lines.append(f"- {span}: {fixed:.2f} s + {1000 * per_image:.2f} ms per image")
    return lines


def job_latency_note(scaling: list[dict[str, Any]], job_latency: dict[str, float]) -> list[str]:
    jobs = sorted(row["jobs"] for row in scaling)
    count = f"{jobs[0]} to {jobs[-1]}" if jobs[0] != jobs[-1] else str(jobs[0])
    return [
        "",
        f"Where the fixed part comes from: each run of the stage is {count} Spark jobs "
        '("Spark jobs": Parquet writes, the CNN\'s among them, schema reads, counts, '
        "shuffles, broadcasts for joins), and on these cores a job "
        f"that does nothing takes {job_latency['jvm']:.0f} ms ({job_latency['python']:.0f} ms "
        f"through a Python worker, {job_latency['shuffle']:.0f} ms with a shuffle; medians).",
    ]


def serving_table(serving: dict[str, Any], stage_rate: float) -> list[str]:
    """The prediction service's rows, with the ratios its targets are stated in."""
    latency, load = serving["latency_ms"], serving["load"]
    interpreter = serving["interpreter_single_image_ms"]
    memory = load["memory"]
    return [
        "",
        f"## Prediction service (`fruits-serve`, {serving['interpreters']} interpreters, "
        "127.0.0.1)",
        "",
        f"On the models of a whole `kedro run` of these images ({serving['kedro_run_s']:.1f} s).",
        "",
        "| measure | value | target |",
        "| --- | ---: | --- |",
        f"| accuracy on the {serving['n_test_images']} Test images, through HTTP | "
        f"{serving['accuracy']:.2%} (pipeline: {serving['pipeline_accuracy']:.2%}) | equal |",
        f"| one 100x100 JPEG over HTTP, p50 / p99 | {latency['p50']:.2f} / {latency['p99']:.2f} ms"
        f" | p50 <= 2x the interpreter's {interpreter:.2f} ms: "
        f"{latency['p50'] / interpreter:.2f}x |",
        f"| {load['clients']} clients, {load['requests']:,} single-photo requests | "
        f"{load['images_per_s']:.1f} images/s | >= 0.7x our stage ({stage_rate:.1f}): "
        f"{load['images_per_s'] / stage_rate:.2f}x |",
        f"| failed requests | {load['errors']} | 0 |",
        f"| service memory (RSS): before, after 10%, after all | {memory['before_mb']:.0f}, "
        f"{memory.get('after_10pct_mb', float('nan')):.0f}, {memory['after_mb']:.0f} MB | "
        "stable |",
        f"| cold start: service ready / `fruits-predict` one photo, start to exit | "
        f"{serving['service_start_s']:.1f} / {serving['predict_cold_s']:.1f} s | predict <= 2 s |",
    ]
