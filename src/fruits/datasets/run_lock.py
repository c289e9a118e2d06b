"""One writer per data root: a lock file taken when a run starts, left when it ends."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from fsspec.implementations.local import LocalFileSystem
from kedro.io import AbstractDataset, DatasetError

from fruits.datasets.filesystems import filesystem, spark_uri
from fruits.errors import FruitsInputError

logger = logging.getLogger(__name__)


class RunLockedError(FruitsInputError):
    """Another run holds the data root."""


class RunLockDataset(AbstractDataset[None, dict[str, Any] | None]):
    """A lock file under the data root: one run writes there at a time.

    ``acquire`` creates the file only if it does not exist, in one atomic step (an
    exclusive create locally, a conditional PUT ``If-None-Match: *`` on S3). While the
    run lasts, a thread refreshes the file's ``heartbeat``. A lock is stale when its run is
    gone: on the same machine its process no longer exists; elsewhere its heartbeat is
    older than ``stale_after_seconds``. A stale lock is taken over atomically (a rename
    locally, a conditional PUT ``If-Match`` on S3), so of two runs finding it only one
    wins. ``load`` returns the holder, or None.
    """

    def __init__(
        self,
        *,
        filepath: str,
        stale_after_seconds: float = 120,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._uri = spark_uri(filepath)
        self._fs, self._path = filesystem(self._uri, fs_args)
        self._stale_after = float(stale_after_seconds)
        self._holder: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.metadata = metadata

    def load(self) -> dict[str, Any] | None:
        """Who holds the lock (run, host, pid, started, heartbeat), or None."""
        holder, _ = self._read()
        return holder

    def save(self, data: None) -> None:
        """Refuse: the lock is taken with ``acquire``."""
        raise DatasetError("RunLockDataset is taken with acquire(), not saved.")

    def acquire(self, run: str) -> None:
        """Take the lock for ``run``, or raise ``RunLockedError`` naming its holder."""
        now = time.time()
        mine = {"run": run, "host": socket.gethostname(), "pid": os.getpid(),
                "started": now, "heartbeat": now}  # fmt: skip
        if not self._create(mine):
            holder, tag = self._read()
            if holder is not None and not self._is_stale(holder):
                started = datetime.fromtimestamp(holder.get("started", 0), UTC)
                raise RunLockedError(
                    f"another run is writing to {self._uri.rsplit('/', 1)[0]} (run "
                    f"{holder.get('run')}, pid {holder.get('pid')} on {holder.get('host')}, "
                    f"started {started:%Y-%m-%d %H:%M:%S} UTC): wait for it to end, or give "
                    "this run another data_root."
                )
            logger.warning("Taking over the lock left by a run that is gone: %s.", holder)
            if not self._take_over(mine, tag):
                raise RunLockedError(
                    f"another run took over the stale lock {self._uri} at the same moment: "
                    "wait for it to end, or give this run another data_root."
                )
        self._holder = mine
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="run lock", daemon=True)
        self._heartbeat.start()

    def release(self) -> None:
        """Leave the lock (if this process holds it)."""
        if self._holder is None:
            return
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        holder, _ = self._read()
        if holder is not None and holder.get("run") == self._holder["run"]:
            self._fs.rm(self._path)
        self._holder = None

    def _is_stale(self, holder: dict[str, Any]) -> bool:
        if holder.get("host") == socket.gethostname():
            return not _process_exists(int(holder.get("pid", -1)))
        return time.time() - float(holder.get("heartbeat", 0)) > self._stale_after

    def _beat(self) -> None:
        while not self._stop.wait(self._stale_after / 4):
            self._holder = {**self._holder, "heartbeat": time.time()}
            try:
                self._overwrite(self._holder)
            except Exception as error:  # a missed beat is not fatal: the next one retries
                logger.warning("Could not refresh the run lock %s: %s", self._uri, error)

    # Storage-specific steps: an atomic create, a read with a version tag, a takeover.
    def _local(self) -> bool:
        return isinstance(self._fs, LocalFileSystem)

    def _is_s3(self) -> bool:
        return "s3" in (
            self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        )

    def _create(self, holder: dict[str, Any]) -> bool:
        body = json.dumps(holder).encode()
        if self._local():
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            try:
                descriptor = os.open(self._path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "wb") as lock:
                lock.write(body)
            return True
        if self._is_s3():
            return self._s3_put(body, IfNoneMatch="*")
        # Other stores: not atomic between the check and the write (said in the README).
        if self._fs.exists(self._path):
            return False
        self._fs.pipe_file(self._path, body)
        return True

    def _read(self) -> tuple[dict[str, Any] | None, str | None]:
        try:
            self._fs.invalidate_cache(self._path)
            info = self._fs.info(self._path)
            body = self._fs.cat_file(self._path)
        except FileNotFoundError:
            return None, None
        try:
            holder = json.loads(body)
        except ValueError:
            holder = {}  # half-written by a killed run: stale
        return holder, info.get("ETag") or info.get("etag")

    def _take_over(self, holder: dict[str, Any], tag: str | None) -> bool:
        if self._local():
            try:  # of two runs renaming the stale lock away, only one succeeds
                os.rename(self._path, f"{self._path}.stale-{uuid.uuid4().hex}")
            except FileNotFoundError:
                return False
            for stale in self._fs.glob(f"{self._path}.stale-*"):
                self._fs.rm(stale)
            return self._create(holder)
        if self._is_s3() and tag:
            return self._s3_put(json.dumps(holder).encode(), IfMatch=tag)
        self._fs.rm(self._path)
        return self._create(holder)

    def _overwrite(self, holder: dict[str, Any]) -> None:
        body = json.dumps(holder).encode()
        if self._local():
            staged = f"{self._path}.{uuid.uuid4().hex}"
            with open(staged, "wb") as lock:
                lock.write(body)
            os.replace(staged, self._path)
        else:
            self._fs.pipe_file(self._path, body)

    def _s3_put(self, body: bytes, **condition: str) -> bool:
        bucket, key = self._path.split("/", 1)
        try:
            self._fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, **condition)
        except Exception as error:
            if (
                "PreconditionFailed" in repr(error)
                or "412" in str(error)
                or isinstance(error, FileExistsError)
            ):
                return False
            raise
        return True

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._uri, "stale_after_seconds": self._stale_after}


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0
