"""The prediction service over real HTTP on 127.0.0.1, with real Fruits-360 photos."""

import json
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import urllib3

from tests import bad_images
from tests.conftest import REPO, run_project
from tests.helpers import FEATURES_VIEW, local_path, read_view
from tests.serving.conftest import FRUITS_SERVE, start_service, stop_service

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def test_images(pipeline_run) -> pd.DataFrame:
    table = read_view(pipeline_run.data_root, FEATURES_VIEW)
    return table[table["split"] == "Test"].sort_values("path").reset_index(drop=True)


def photo(test_images, index: int = 0) -> bytes:
    return local_path(test_images["path"].iloc[index]).read_bytes()


def test_a_photo_gets_its_fruit_information_and_the_model_version(service, test_images):
    status, answer = service.predict(photo(test_images))
    assert status == 200
    assert answer["top"][0]["label"] == test_images["label"].iloc[0]
    assert len(answer["top"]) == 3 and {"fruit", "family", "note"} <= set(answer["top"][0])
    probabilities = [guess["probability"] for guess in answer["top"]]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-9
    assert set(answer["model_version"]) == {"backbone", "pca_model", "fruit_classifier"}


def test_multipart_upload_gives_the_same_answer(service, test_images):
    raw = service.predict(photo(test_images, 3))
    multipart = service.request(
        "POST", "/v1/predict", fields={"photo": ("apple.jpg", photo(test_images, 3), "image/jpeg")}
    )
    assert raw == multipart and raw[0] == 200


def test_accuracy_through_the_service_equals_the_pipelines(service, test_images, pipeline_run):
    metrics = json.loads(
        (pipeline_run.data_root / "08_reporting" / "classification_metrics.json").read_text()
    )
    correct = 0
    for start in range(0, len(test_images), 16):
        chunk = test_images.iloc[start : start + 16]
        fields = [
            ("photos", (str(i), local_path(path).read_bytes(), "image/jpeg"))
            for i, path in enumerate(chunk["path"])
        ]
        status, answer = service.request("POST", "/v1/predict/batch?top=1", fields=fields)
        assert status == 200
        predicted = [result["top"][0]["label"] for result in answer["results"]]
        correct += sum(p == label for p, label in zip(predicted, chunk["label"], strict=True))
    assert len(test_images) == metrics["n_test_images"]
    assert correct / len(test_images) == pytest.approx(metrics["accuracy"], abs=1e-12)


def _multipart_without_photo() -> dict:
    return {"fields": {"picture": ("a.jpg", b"\xff\xd8", "image/jpeg")}}


BAD_REQUESTS = {
    "empty body": (lambda tmp: {"body": b"", "headers": {"Content-Type": "image/jpeg"}}, 400),
    "not an image": (
        lambda tmp: {"body": bad_images.html_as_jpeg(tmp).read_bytes(),
                     "headers": {"Content-Type": "image/jpeg"}},
        422,
    ),
    "truncated": (
        lambda tmp: {"body": bad_images.truncated_jpeg(tmp).read_bytes(),
                     "headers": {"Content-Type": "image/jpeg"}},
        422,
    ),
    "decompression bomb": (
        lambda tmp: {"body": bad_images.oversized_png(tmp).read_bytes(),
                     "headers": {"Content-Type": "image/png"}},
        422,
    ),
    "too large": (
        lambda tmp: {"body": b"\xff" * (11 * 2**20), "headers": {"Content-Type": "image/jpeg"}},
        413,
    ),
    "too large, chunked": (
        lambda tmp: {"body": iter([b"\xff" * 2**20] * 11), "chunked": True,
                     "headers": {"Content-Type": "image/jpeg"}},
        413,
    ),
    "wrong content type": (
        lambda tmp: {"body": b'{"photo": "x"}', "headers": {"Content-Type": "application/json"}},
        415,
    ),
    "multipart without photo": (lambda tmp: _multipart_without_photo(), 422),
    "malformed multipart": (
        lambda tmp: {"body": b"garbage",
                     "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
        400,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("make_request", "status"), BAD_REQUESTS.values(), ids=BAD_REQUESTS)
def test_bad_input_gets_a_4xx_saying_what_to_send(service, tmp_path, make_request, status):
    got, answer = service.request("POST", "/v1/predict", **make_request(tmp_path))
    assert got == status, answer
    assert isinstance(answer["error"], str) and answer["error"]
    _, ready = service.request("GET", "/readyz")
    assert ready["status"] == "ready"  # still serving


def test_bad_query_and_routes_are_4xx(service, test_images):
    assert service.predict(photo(test_images), top=0)[0] == 422
    assert service.request("GET", "/v1/predict")[0] == 405
    assert service.request("GET", "/nowhere")[0] == 404
    status, answer = service.request("POST", "/v1/predict/batch", body=photo(test_images))
    assert status == 415 and "photos" in answer["error"]


def test_a_bad_photo_in_a_batch_is_answered_alone(service, test_images, tmp_path):
    fields = [
        ("photos", ("good.jpg", photo(test_images, 0), "image/jpeg")),
        ("photos", ("bad.jpg", bad_images.truncated_jpeg(tmp_path).read_bytes(), "image/jpeg")),
        ("photos", ("good2.jpg", photo(test_images, 1), "image/jpeg")),
    ]
    status, answer = service.request("POST", "/v1/predict/batch", fields=fields)
    assert status == 200
    results = answer["results"]
    assert [r["photo"] for r in results] == ["good.jpg", "bad.jpg", "good2.jpg"]
    assert "truncated" in results[1]["error"] and "top" not in results[1]
    assert results[2]["top"][0]["label"] == test_images["label"].iloc[1]


def test_concurrent_requests_get_the_sequential_answers(service, test_images):
    photos = [photo(test_images, i) for i in range(8)]
    sequential = [service.predict(content) for content in photos]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(service.predict, photos * 5))
    assert concurrent == sequential * 5


def test_one_log_line_per_request_without_photo_content(service, test_images):
    pattern = r"POST /v1/predict (\d{3}) [\d.]+ ms model [0-9a-f]{8}-"
    before = len(re.findall(pattern, service.log.read_text()))
    service.predict(photo(test_images))
    service.predict(b"not a photo")
    # A line is written once its answer is sent: an earlier test's last lines may still come.
    deadline = time.monotonic() + 10
    while (lines := re.findall(pattern, service.log.read_text()))[-2:] != ["200", "422"]:
        assert time.monotonic() < deadline, f"no line for these two requests: {lines[before:]}"
        time.sleep(0.1)
    assert len(lines) >= before + 2
    assert "not a photo" not in service.log.read_text()


def test_a_forged_path_cannot_forge_a_log_line(service):
    service.request("GET", "/x%0A2026-01-01 fruits-serve: POST /v1/predict 200 1.0 ms model x")
    time.sleep(0.5)
    assert not any(
        line.startswith("2026-01-01 fruits-serve") for line in service.log.read_text().splitlines()
    )


def test_new_models_are_swapped_in_under_load_without_a_failed_request(service, test_images):
    """A later `kedro run` refits the PCA and the classifier while clients keep asking."""
    _, before = service.request("GET", "/v1/models")
    results, failures, stop = [], [], threading.Event()

    def client(content: bytes) -> None:
        http = urllib3.PoolManager(retries=False, timeout=30)
        while not stop.is_set():
            try:
                response = http.request(
                    "POST", service.url + "/v1/predict", body=content,
                    headers={"Content-Type": "image/jpeg"},
                )  # fmt: skip
                results.append((response.status, json.loads(response.data)["model_version"]))
            except Exception as error:  # noqa: BLE001 - any failure is what the test counts
                failures.append(repr(error))

    clients = [threading.Thread(target=client, args=(photo(test_images, i),)) for i in range(3)]
    for thread in clients:
        thread.start()
    try:
        # Spark rewrites the model folders in place (deleted, then written), one after the
        # other: the service must serve neither half of them nor a mix of old and new.
        run_project(
            pipelines=["reduction", "classification"],
            data_root=str(service.data_root),
            **{"reduction.variance_target": 0.8, "classification.refit": "always"},
        )
        swapped = _wait_for_new_version(service, before["model_version"])
        answered_before_the_end = len(results)
        time.sleep(1)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert swapped, "the new models were not picked up"
    assert not failures and {status for status, _ in results} == {200}
    assert len(results) > answered_before_the_end  # still answering after the swap
    versions = [json.dumps(version, sort_keys=True) for _, version in results]
    old, new = json.dumps(before["model_version"], sort_keys=True), versions[-1]
    assert new != old and set(versions) == {old, new}  # never a mix of the two runs' models
    manifest = json.loads((service.data_root / "06_models" / "model_manifest.json").read_text())
    assert json.dumps(manifest, sort_keys=True) == new
    assert "Models swapped in" in service.log.read_text()


def _wait_for_new_version(service, old: dict, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if service.request("GET", "/v1/models")[1]["model_version"] != old:
            return True
        time.sleep(0.2)
    return False


def test_reload_says_when_nothing_changed(service):
    status, answer = service.request("POST", "/v1/reload")
    assert status == 200 and answer["swapped"] is False


def test_openapi_lists_the_endpoints(service):
    status, spec = service.request("GET", "/openapi.json")
    assert status == 200
    assert {"/v1/predict", "/v1/predict/batch", "/v1/reload", "/healthz", "/readyz"} <= set(
        spec["paths"]
    )


def test_no_models_stops_the_start_with_one_line(tmp_path):
    result = subprocess.run(
        [FRUITS_SERVE, "--port", "0", "--params", f"data_root={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("fruits-serve:")]
    assert len(errors) == 1 and "run `kedro run`" in errors[0]
    assert "Traceback" not in result.stderr


def test_a_second_service_answers_from_its_own_port(pipeline_run, tmp_path, test_images):
    """Start and stop leave no process behind (the fixture's way, checked here once)."""
    process, url = start_service(pipeline_run.data_root, tmp_path / "log", "--interpreters", "1")
    try:
        response = urllib3.request(
            "POST",
            url + "/v1/predict",
            body=photo(test_images),
            headers={"Content-Type": "image/jpeg"},
            timeout=60,
        )
        assert response.status == 200
    finally:
        stop_service(process)
    assert process.poll() is not None
