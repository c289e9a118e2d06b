"""A local multi-node YARN on 127.0.0.1, started and stopped from Python.

``MiniYarn.java`` (next to this file) runs Hadoop's MiniYARNCluster from the jars that
``make setup`` copies into ``.jars/yarn/``; this module starts it, waits until it listens,
and stops it with every container it launched. ``make yarn-cluster`` runs it until Ctrl-C.

    with mini_yarn(workdir, node_managers=2) as cluster:
        env = {"HADOOP_CONF_DIR": str(cluster.conf_dir), ...}   # then spark-submit --master yarn
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("MiniYarn.java")
JARS = REPO / ".jars" / "yarn"
# Java 17 closes the JDK internals Hadoop 3.3 reaches into (reflection, NIO, direct buffers).
ADD_OPENS = [
    f"--add-opens=java.base/{package}=ALL-UNNAMED"
    for package in (
        "java.lang", "java.lang.reflect", "java.util", "java.io", "java.net", "java.nio",
        "sun.nio.ch", "java.util.concurrent",
    )
]  # fmt: skip
START_TIMEOUT_S = 120
STOP_GRACE_S = 5


@dataclass(frozen=True)
class YarnCluster:
    """A running cluster: its client configuration and where its NodeManagers keep logs."""

    conf_dir: Path
    resource_manager: str
    workdir: Path

    def container_logs(self, application_id: str) -> dict[str, Path]:
        """Each container of the application (all attempts): its log folder, by container id.

        A container's folder holds ``stdout`` and ``stderr`` (a Spark driver's or
        executor's log, and its Python workers' stderr).
        """
        folders: dict[str, Path] = {}
        # os.walk, not a recursive glob: the NodeManagers create and rename folders in their
        # local dirs (file caches) all the time, and a glob stops at the first one that
        # vanished under it (FileNotFoundError, seen with three test workers); those dirs
        # hold no logs and are not entered.
        for root, dirs, _ in os.walk(self.workdir):
            if "logDir" not in Path(root).name:
                dirs[:] = [name for name in dirs if "localDir" not in name]
                continue
            dirs[:] = []
            try:
                containers = os.scandir(Path(root) / application_id)
            except FileNotFoundError:
                continue
            with containers:
                for entry in containers:
                    if entry.name.startswith("container_"):
                        folders[entry.name] = Path(entry.path)
        return dict(sorted(folders.items()))


def _wait_until_ready(process: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"MiniYARNCluster exited ({process.returncode}): see {log}")
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if ready:
            line = process.stdout.readline()
            if line.startswith("READY "):
                return line.split()[1]
    raise RuntimeError(f"MiniYARNCluster did not start in {START_TIMEOUT_S} s: see {log}")


def processes(*markers: str) -> Iterator[tuple[int, list[str]]]:
    """``(pid, argv)`` of every other process whose command line holds all ``markers``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it ended meanwhile
            continue
        command = " ".join(argv)
        if all(marker in command for marker in markers):
            yield int(entry.name), argv


def _stop_containers(workdir: Path) -> None:
    """SIGKILL whatever still runs from the cluster's folders (containers run in their own
    sessions: they outlive a killed NodeManager)."""
    for pid, _ in processes(str(workdir)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def mini_yarn(workdir: Path, node_managers: int = 2) -> Iterator[YarnCluster]:
    """Start a ResourceManager and ``node_managers`` NodeManagers; stop them on exit."""
    if not any(JARS.glob("hadoop-client-minicluster-*.jar")):
        raise RuntimeError(f"No YARN jars in {JARS}: run `make setup` (Maven fetches them).")
    workdir.mkdir(parents=True, exist_ok=True)
    conf_dir, log = workdir / "hadoop-conf", workdir / "minicluster.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            ["java", "-cp", f"{JARS}/*", *ADD_OPENS, str(LAUNCHER), str(conf_dir),
             str(node_managers)],
            cwd=workdir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
            text=True, start_new_session=True,
        )  # fmt: skip
        try:
            resource_manager = _wait_until_ready(process, log)
            yield YarnCluster(conf_dir, resource_manager, workdir)
        finally:
            process.stdin.close()  # the launcher stops the cluster when its input closes
            try:
                # A graceful stop waits on the NodeManagers' deletion services (logs are kept
                # for 10 minutes): beyond a few seconds, kill; no state is worth keeping.
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            _stop_containers(workdir)


def main() -> None:
    """`make yarn-cluster`: run a two-NodeManager cluster until interrupted."""
    workdir = Path(tempfile.mkdtemp(prefix="fruits-yarn-"))
    with mini_yarn(workdir) as cluster:
        sys.stdout.write(
            f"YARN is up: ResourceManager {cluster.resource_manager}, logs under {workdir}\n"
            f"export HADOOP_CONF_DIR={cluster.conf_dir}\nCtrl-C stops it.\n"
        )
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            # Ctrl-C or a TERM stops the cluster (a background job ignores SIGINT by default).
            for stop in (signal.SIGINT, signal.SIGTERM):
                signal.signal(stop, signal.default_int_handler)
            signal.pause()


if __name__ == "__main__":
    main()
