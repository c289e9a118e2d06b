"""The prediction service as a FastAPI application: photos in, fruits out, never a 5xx.

``create_app`` takes how to load the models and how to read their current version;
``fruits.apps.serve`` gives it the catalog's. Models are loaded once; a newer version
(a later ``kedro run``) is loaded beside the one in use and swapped in with one
assignment, so no request ever sees half of each.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from fruits.errors import FruitsInputError
from fruits.ml.fruit_predictor import FruitPredictor

logger = logging.getLogger("fruits.serve")

STATIC = resources.files("fruits.apps") / "static"
SEND_A_PHOTO = (
    "send one photo (JPEG, PNG, WebP, BMP, GIF or TIFF) as the request body with an image/* "
    "content type, or as the multipart/form-data field `photo`"
)
# Headers and boundaries of a multipart upload, beyond the photo itself.
_MULTIPART_OVERHEAD = 64 * 1024
Top = Annotated[int, Query(ge=1, le=20, description="How many classes to return.")]


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and reload policy of the service.

    Attributes:
        max_photo_bytes: Largest photo accepted, checked before it is read whole.
        max_batch: Most photos in one batch request.
        reload_interval: Seconds between checks for newer models (0: only on /v1/reload).
    """

    max_photo_bytes: int = 10 * 1024 * 1024
    max_batch: int = 16
    reload_interval: float = 10.0


class ModelHolder:
    """The predictor in use, swapped atomically when the models' version changes.

    ``probe`` reads the version the last successful run recorded (``model_manifest``);
    ``load`` builds a predictor from the files. A candidate whose own digests are not
    the probed version (a run is rewriting the files) is not swapped in; one whose
    models do not fit together is not tried again until the version changes.
    """

    def __init__(
        self,
        load: Callable[[], FruitPredictor],
        probe: Callable[[], dict[str, str]],
        predictor: FruitPredictor,
    ) -> None:
        self._load, self._probe = load, probe
        self.predictor = predictor
        self._lock = threading.Lock()
        self._refused: dict[str, str] | None = None

    def reload(self) -> bool:
        """Load and swap in the recorded models if their version differs; True if swapped.

        Raises:
            ModelsNotLoadedError: The new models could not be loaded (the ones in use stay).
        """
        with self._lock:
            version = self._probe()
            if version in (self.predictor.version, self._refused):
                return False
            try:
                candidate = self._load()
            except ValueError as error:  # models that do not fit together: not again
                self._refused = version
                raise ModelsNotLoadedError(str(error)) from error
            if candidate.version != version:
                raise ModelsNotLoadedError(
                    "the model files are being rewritten (their digests are not the recorded "
                    "ones); trying again later"
                )
            self.predictor = candidate  # one assignment: the swap
            logger.info("Models swapped in: version %s.", candidate.version_tag)
            return True

    def watch(self, interval: float, stop: threading.Event) -> None:
        """Check for newer models every ``interval`` seconds until ``stop`` is set."""
        while not stop.wait(interval):
            try:
                self.reload()
            except Exception as error:  # noqa: BLE001 - keep serving the models in use
                logger.warning("Models not reloaded, still serving the current ones: %s", error)


class ModelsNotLoadedError(Exception):
    """Newer models exist but could not be loaded; the message says why."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _received_photo(request: Request) -> bytes:
    """The photo of a single-photo request, or an HTTP error saying what to send."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        # The form's temporary files are closed on leaving the block.
        async with request.form(max_files=1, max_fields=4) as form:
            photo = form.get("photo")
            if not isinstance(photo, UploadFile):
                raise HTTPException(422, f"no file in the multipart field `photo`: {SEND_A_PHOTO}")
            content = await photo.read()
    elif content_type in ("", "application/octet-stream") or content_type.startswith("image/"):
        content = await request.body()
    else:
        raise HTTPException(415, f"content type {content_type!r} is not a photo: {SEND_A_PHOTO}")
    if not content:
        raise HTTPException(400, f"the photo is empty: {SEND_A_PHOTO}")
    return content


async def _received_photos(
    request: Request, settings: ServiceSettings
) -> list[tuple[str | None, bytes]]:
    """The (file name, bytes) of each photo of a batch request."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        raise HTTPException(
            415, "send the photos as multipart/form-data, one field `photos` per photo"
        )
    limits = {"max_files": settings.max_batch, "max_fields": settings.max_batch + 4}
    async with request.form(**limits) as form:
        photos = [item for item in form.getlist("photos") if isinstance(item, UploadFile)]
        if not photos:
            raise HTTPException(422, "no file in the multipart fields `photos`: send 1 or more")
        return [(photo.filename, await photo.read()) for photo in photos]


def body_limits(settings: ServiceSettings) -> dict[str, int]:
    """The largest request body of each upload route, in bytes."""
    return {
        "/v1/predict": settings.max_photo_bytes + _MULTIPART_OVERHEAD,
        "/v1/predict/batch": settings.max_batch * settings.max_photo_bytes + _MULTIPART_OVERHEAD,
    }


class RequestGuard:
    """ASGI middleware: one log line per request, and oversized bodies refused unread.

    The log line has the method, path, status, latency and the version of the models
    in use; never the photo. A body declared larger than its route's limit gets the
    JSON 413 at once (the routes' own limit, FastAPI's, refuses bodies that grow past
    it while streaming in, but answers a declared one in plain text).
    """

    def __init__(self, app: Any, holder: Callable[[], ModelHolder], settings: ServiceSettings):
        self.app, self.holder, self.settings = app, holder, settings
        self.limits = body_limits(settings)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def recording_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        declared = dict(scope["headers"]).get(b"content-length", b"")
        limit = self.limits.get(scope["path"])
        try:
            if limit is not None and declared.isdigit() and int(declared) > limit:
                response = _error(413, _too_large_message(self.settings))
                await response(scope, receive, recording_send)
            else:
                await self.app(scope, receive, recording_send)
        finally:
            # The version of the models that answered (the route records it), else the
            # current one; the path escaped (it is the client's text).
            answered_by = scope.get("state", {}).get("version_tag")
            logger.info(
                "%s %s %d %.1f ms model %s",
                scope["method"],
                scope["path"].encode("unicode_escape").decode("ascii")[:200],
                status[0],
                (time.perf_counter() - started) * 1000,
                answered_by or self.holder().predictor.version_tag,
            )


def _too_large_message(settings: ServiceSettings) -> str:
    return (
        f"the photo is larger than {settings.max_photo_bytes / 2**20:g} MiB: send a smaller "
        "or more compressed one"
    )


def create_app(
    load: Callable[[], FruitPredictor],
    probe: Callable[[], dict[str, str]],
    settings: ServiceSettings,
) -> FastAPI:
    """The service, with its models loaded now (a failure here stops the start-up)."""
    holder = ModelHolder(load, probe, load())
    stop_watching = threading.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202
        watcher = threading.Thread(
            target=holder.watch, args=(settings.reload_interval, stop_watching), daemon=True
        )
        if settings.reload_interval > 0:
            watcher.start()
        yield
        stop_watching.set()

    app = FastAPI(
        title="Fruits prediction service",
        summary="Which fruit is this? MobileNetV2 features, PCA and a logistic regression.",
        version="1",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.add_middleware(RequestGuard, holder=lambda: holder, settings=settings)
    _add_error_handlers(app, settings)
    _add_routes(app, holder)
    _add_prediction_routes(app, holder, settings)
    return app


def _add_routes(app: FastAPI, holder: ModelHolder) -> None:
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    @app.get("/healthz", summary="The process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Models loaded: predictions can be asked")
    async def readyz() -> dict[str, Any]:
        return {"status": "ready", "model_version": holder.predictor.version}

    @app.get("/v1/models", summary="The models in use and the classes they know")
    async def models() -> dict[str, Any]:
        predictor = holder.predictor
        return {"model_version": predictor.version, "labels": predictor.labels}

    @app.post("/v1/reload", summary="Load the newest models now, if they changed")
    def reload() -> Any:
        try:
            swapped = holder.reload()
        except (ModelsNotLoadedError, OSError, FruitsInputError) as error:
            return _error(409, f"the new models could not be loaded, still serving: {error}")
        return {"swapped": swapped, "model_version": holder.predictor.version}


def _add_prediction_routes(app: FastAPI, holder: ModelHolder, settings: ServiceSettings) -> None:
    limits = body_limits(settings)

    # Bodies over the limit are refused as they stream in (FastAPI's body limit), before
    # the photo is read whole, whatever the declared length.
    @app.post(
        "/v1/predict",
        summary="One photo (raw body or multipart field `photo`)",
        max_body_size=limits["/v1/predict"],
    )
    async def predict(request: Request, top: Top = 3) -> dict[str, Any]:
        content = await _received_photo(request)
        _check_size(len(content), settings)
        predictor = holder.predictor  # this request's models, whatever swaps meanwhile
        request.state.version_tag = predictor.version_tag
        (answer,) = await run_in_threadpool(predictor.predict, [content], top)
        if answer.error:
            raise HTTPException(422, f"not a usable photo ({answer.error}): {SEND_A_PHOTO}")
        return {"top": answer.guesses, "model_version": predictor.version}

    @app.post(
        "/v1/predict/batch",
        summary="Several photos (multipart fields `photos`)",
        max_body_size=limits["/v1/predict/batch"],
    )
    async def predict_batch(request: Request, top: Top = 3) -> dict[str, Any]:
        photos = await _received_photos(request, settings)
        for _, content in photos:
            _check_size(len(content), settings)
        predictor = holder.predictor
        request.state.version_tag = predictor.version_tag
        answers = await run_in_threadpool(predictor.predict, [c for _, c in photos], top)
        results = [
            {"photo": name, "top": answer.guesses}
            if answer.guesses is not None
            else {"photo": name, "error": answer.error}
            for (name, _), answer in zip(photos, answers, strict=True)
        ]
        return {"results": results, "model_version": predictor.version}


def _check_size(size: int, settings: ServiceSettings) -> None:
    if size > settings.max_photo_bytes:
        raise HTTPException(413, _too_large_message(settings))


def _add_error_handlers(app: FastAPI, settings: ServiceSettings) -> None:
    """Every refusal as ``{"error": "..."}`` with a 4xx; nothing about a bad request is a 5xx."""

    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 413:  # noqa: PLR2004 - FastAPI's body limit says only "Content Too Large"
            return _error(413, _too_large_message(settings))
        return _error(error.status_code, str(error.detail))

    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        return _error(422, problems)

    async def gone(_: Request, __: ClientDisconnect) -> Response:
        # The client left mid-upload: nobody reads the answer; nginx's 499 in the log.
        return Response(status_code=499)

    # Starlette's own refusals (404, 405, a malformed multipart upload: 400) included.
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(ClientDisconnect, gone)
    app.add_exception_handler(RequestValidationError, invalid)
