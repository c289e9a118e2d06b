"""`fruits-predict` and the Spark-free application of the saved Spark ML models."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel

from fruits.apps import predict
from fruits.apps.models import load_catalog, load_predictor
from fruits.datasets import PortableBackboneDataset
from fruits.ml.classifier import to_pca_vectors
from fruits.ml.local_models import LocalPipelineModel
from fruits.ml.pca import project, to_feature_vectors
from tests.conftest import FRUITS_360, REPO, WEIGHTS_PARAMS
from tests.helpers import FEATURES_VIEW, local_path, read_delta, read_view, spark_feature_view

pytestmark = pytest.mark.pipeline


def cli_params(pipeline_run) -> str:
    return ",".join(
        f"{k}={v}" for k, v in {"data_root": pipeline_run.data_root, **WEIGHTS_PARAMS}.items()
    )


@pytest.fixture(scope="module")
def image_features(pipeline_run) -> pd.DataFrame:
    table = read_view(pipeline_run.data_root, FEATURES_VIEW)
    return table.sort_values("path").reset_index(drop=True)


@pytest.fixture(scope="module")
def test_photos(image_features) -> pd.DataFrame:
    return image_features[image_features["split"] == "Test"].iloc[::7]


def test_fruit_info_describes_every_class():
    info = pd.read_csv(REPO / "data" / "01_raw" / "fruit_info.csv")
    assert list(info.columns) == ["label", "fruit", "family", "note"]
    assert set(info["label"]) == {path.name for path in (FRUITS_360 / "Training").iterdir()}
    assert info.notna().all().all() and info["label"].is_unique


def test_local_models_equal_spark_ml(spark, pipeline_run, image_features):
    models = pipeline_run.data_root / "06_models"
    features = spark_feature_view(pipeline_run.data_root)
    pca_model = PipelineModel.load(str(models / "pca_model"))
    classifier = PipelineModel.load(str(models / "fruit_classifier"))
    scored = (
        classifier.transform(to_pca_vectors(project(features, pca_model)))
        .select("path", "pca_features", "probability", "predicted_label")
        .toPandas()
        .sort_values("path")
    )
    matrix = np.stack(image_features["features"].to_numpy()).astype(np.float64)
    local_pca = LocalPipelineModel(str(models / "pca_model")).transform(matrix)["vector"]
    np.testing.assert_allclose(local_pca, np.stack(scored["pca_features"]), rtol=1e-5, atol=1e-4)
    local = LocalPipelineModel(str(models / "fruit_classifier")).transform(local_pca)
    spark_probability = np.stack([p.toArray() for p in scored["probability"]])
    np.testing.assert_allclose(local["probability"], spark_probability, atol=1e-6)
    assert local["predicted_label"] == list(scored["predicted_label"])


def test_local_model_applies_a_standard_scaler(spark, tmp_path):
    from pyspark.ml import Pipeline  # noqa: PLC0415
    from pyspark.ml.feature import PCA, StandardScaler  # noqa: PLC0415

    rng = np.random.default_rng(3)
    data = rng.normal(size=(40, 6)) * [1, 2, 3, 0, 5, 6] + [0, 1, 2, 3, 4, 5]
    frame = spark.createDataFrame([(row.tolist(),) for row in data], "features array<double>")
    frame = to_feature_vectors(frame)
    model = Pipeline(stages=[
        StandardScaler(withMean=True, inputCol="feature_vector", outputCol="scaled"),
        PCA(k=3, inputCol="scaled", outputCol="pca"),
    ]).fit(frame)  # fmt: skip
    model.save(str(tmp_path / "model"))
    expected = np.stack([row.pca.toArray() for row in model.transform(frame).collect()])
    local = LocalPipelineModel(str(tmp_path / "model")).transform(data)["vector"]
    np.testing.assert_allclose(local, expected, atol=1e-9)


@pytest.fixture(scope="module")
def predictor(pipeline_run):
    catalog = load_catalog(REPO, "local", {"data_root": str(pipeline_run.data_root)})
    return load_predictor(catalog)


def test_prediction_uses_the_pipelines_features(predictor, test_photos):
    """A photo gets the same features through the prediction apps as through the pipeline."""
    inputs = [predictor.preprocess(local_path(uri).read_bytes()) for uri in test_photos["path"]]
    ours = predictor.embed(np.stack(inputs))
    pipeline = np.stack(test_photos["features"].to_numpy())
    assert np.abs(ours - pipeline).max() <= 1e-4


def test_predictor_refuses_models_that_do_not_fit_together(pipeline_run, predictor, tmp_path):
    """A classifier of another PCA (other k) is found at load time, not on a request."""
    from fruits.ml.fruit_predictor import FruitPredictor  # noqa: PLC0415

    models = pipeline_run.data_root / "06_models"
    pca = LocalPipelineModel(str(models / "pca_model"))
    classifier = LocalPipelineModel(str(models / "fruit_classifier"))
    backbone = PortableBackboneDataset(filepath=str(models / "backbone")).load()
    pca.stages[-1].data["pc"]["numCols"] -= 1  # one component fewer
    pca.stages[-1].data["pc"]["values"] = pca.stages[-1].data["pc"]["values"][:-1280]
    with pytest.raises(ValueError, match="do not fit together"):
        FruitPredictor(backbone, pca, classifier, [])


def test_prediction_apps_never_import_tensorflow(pipeline_run, test_photos):
    """The exported TFLite backbone runs with LiteRT: seconds of TensorFlow start-up saved."""
    photo = str(local_path(test_photos["path"].iloc[0]))
    script = (
        "import sys; from fruits.apps import predict; "
        f"code = predict.main([{photo!r}, '--params', {cli_params(pipeline_run)!r}]); "
        "assert code == 0, code; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_fruits_predict_json_top3(pipeline_run, test_photos, capsys):
    photos = [str(local_path(uri)) for uri in test_photos["path"]]
    code = predict.main(
        [*photos, "--json", "--params", cli_params(pipeline_run), "--project-path", str(REPO)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads(captured.out)
    assert [r["photo"] for r in results] == photos
    correct = 0
    for result, label in zip(results, test_photos["label"], strict=True):
        top = result["top"]
        assert len(top) == 3
        assert [g["probability"] for g in top] == sorted(
            (g["probability"] for g in top), reverse=True
        )
        assert 0 < sum(g["probability"] for g in top) <= 1 + 1e-9
        assert {"fruit", "family", "note"} <= set(top[0])
        correct += top[0]["label"] == label
    assert correct >= len(results) - 1
    assert "no Spark started" in captured.err


def test_fruits_predict_with_spark_agrees(pipeline_run, test_photos, capsys):
    photo = str(local_path(test_photos["path"].iloc[0]))
    common = [photo, "--json", "--params", cli_params(pipeline_run), "--project-path", str(REPO)]
    assert predict.main(common) == 0
    local = json.loads(capsys.readouterr().out)
    assert predict.main([*common, "--spark"]) == 0
    with_spark = json.loads(capsys.readouterr().out)
    assert [g["label"] for g in local[0]["top"]] == [g["label"] for g in with_spark[0]["top"]]
    for ours, theirs in zip(local[0]["top"], with_spark[0]["top"], strict=True):
        assert ours["probability"] == pytest.approx(theirs["probability"], abs=1e-6)


def test_console_script_text_output(pipeline_run, test_photos):
    """Installed with the package; one photo; human-readable table."""
    photo = local_path(test_photos["path"].iloc[0])
    result = subprocess.run(
        [str(Path(sys.executable).parent / "fruits-predict"), str(photo),
         "--params", cli_params(pipeline_run)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(photo)
    assert lines[1].strip().startswith("1. " + test_photos["label"].iloc[0])
    assert len(lines) == 4 and "%" in lines[1]


@pytest.mark.parametrize(
    ("make_photo", "message"),
    [
        (lambda tmp: tmp / "absent.jpg", "absent.jpg: no such file"),
        (
            lambda tmp: (tmp / "note.jpg").write_text("<html>") and tmp / "note.jpg",
            "note.jpg: not an image in a supported format",
        ),
    ],
)
def test_bad_photos_give_one_clear_line(pipeline_run, tmp_path, capsys, make_photo, message):
    photo = make_photo(tmp_path)
    code = predict.main(
        [str(photo), "--params", cli_params(pipeline_run), "--project-path", str(REPO)]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert message in error and len(error.splitlines()) == 1


def test_missing_models_say_to_run_the_pipeline(tmp_path, capsys, pipeline_run):
    photo = local_path(read_delta(pipeline_run.data_root / "02_intermediate" / "images")["path"][0])
    params = ",".join([f"data_root={tmp_path}", *(f"{k}={v}" for k, v in WEIGHTS_PARAMS.items())])
    code = predict.main([str(photo), "--params", params, "--project-path", str(REPO)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "run `kedro run`" in error and len(error.splitlines()) == 1


def test_one_bad_photo_among_many_is_reported_alone(pipeline_run, test_photos, tmp_path, capsys):
    good = [str(local_path(uri)) for uri in test_photos["path"].iloc[:2]]
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(Path(good[0]).read_bytes()[:300])
    photos = [good[0], str(truncated), str(tmp_path / "absent.jpg"), good[1]]
    code = predict.main(
        [*photos, "--json", "--params", cli_params(pipeline_run), "--project-path", str(REPO)]
    )
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert code == 2  # not every photo answered
    assert [r["photo"] for r in results] == photos
    assert [("top" in r, "error" in r) for r in results] == [
        (True, False), (False, True), (False, True), (True, False)
    ]  # fmt: skip
    assert "truncated" in results[1]["error"] and results[2]["error"] == "no such file"
    assert f"{truncated}: corrupt or truncated image" in captured.err
    assert [r["top"][0]["label"] for r in (results[0], results[3])] == list(
        test_photos["label"].iloc[:2]
    )
