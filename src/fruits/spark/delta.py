"""Delta Lake tables updated in place: keyed changes applied with one ``MERGE``.

A table that follows the raw images (the image table, the feature store, the PCA features) is
never rewritten whole: a run describes its changes (``TableChanges``), one row per key
marked ``upsert`` (insert or replace the row) or ``delete``, and ``apply_changes`` writes
them in one commit; no change, no commit. Changes that only insert new keys, the common
case of new photos, are appended: on two cores a ``MERGE`` costs 4 to 7 s of fixed work
per table (source materialisation, touched-file search, rewrite) against about 1.5 s for an
append, and a check of the keys (a join on the key columns only) tells them apart, unless
the changes' maker counted them already (``CountedChanges``: the image table from its
listing's join, the feature store from its own counts, the PCA features from their keys
alone, ``count_held``). Counted changes are written once and not persisted.

Each commit records, in Delta's ``userMetadata``, the run that made it and the identity
of the inputs the table was derived from (``sources``: the input tables' versions or their
digests, the backbone...). A run whose inputs are those the table was last derived
from has nothing to do there: its changes are not even computed. So a re-run with
nothing new costs a comparison of identities per table, not a pass over the rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from delta.tables import DeltaTable
from py4j.protocol import Py4JError
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

logger = logging.getLogger(__name__)

# The changes column: what to do with the row of that key.
CHANGE = "_change"
UPSERT = "upsert"
DELETE = "delete"
# Spark's session setting Delta copies into every commit's `userMetadata`: a JSON object
# with the run (set for the whole run by fruits.hooks.OneWriter) and the commit's sources.
RUN_METADATA_KEY = "spark.databricks.delta.commitInfo.userMetadata"
# Marks the changes' keys the table holds already (a column of one query, never written).
_HELD = "_held"


@dataclass(frozen=True)
class CountedChanges:
    """Changes whose maker counted them already: ``held`` gives, for each kind of change
    present in ``rows``, how many of its keys the table holds (``{"upsert": 0}``: new keys
    only, appended). Saves the query that would count them."""

    rows: DataFrame
    held: dict[str, int]


@dataclass(frozen=True)
class TableChanges:
    """What a run changes in a table, computed only when the table's sources changed.

    Args:
        rows: Builds the changes (``upserts`` and ``deletes`` rows, keyed as the table),
            or ``CountedChanges`` when its maker knows their kinds. Called at most once,
            when the table is saved. None: known to be no change (nothing is queried, no
            commit is made).
        sources: The identity of what the table is derived from (table digests, model
            fingerprints). Equal to those of the table's last commit: nothing to do. Empty:
            always compute (a table that follows the raw folder itself).
    """

    rows: Callable[[], DataFrame | CountedChanges] | None
    sources: dict[str, Any] = field(default_factory=dict)


def table_digest(frame: DataFrame) -> str:
    """The identity of the tables a frame reads, as read: for Delta tables, each one's
    location, table id and version; for other files, a digest of the files themselves.

    A Delta version is immutable (a commit that changes rows makes a new version; a table
    made again at the same place gets a new id), so the same versions are the same rows.
    Taken from the query's plan: no Spark job. Listing the version's files instead
    (``inputFiles``) cost a file-filtering job per table and 0.6-0.9 s per call on a re-run.
    """
    versions = _delta_versions(frame)
    if versions is not None:
        return f"delta:{hashlib.sha256(json.dumps(versions).encode()).hexdigest()[:32]}"
    files = sorted(frame.inputFiles())
    return f"{len(files)}:{hashlib.sha256(chr(10).join(files).encode()).hexdigest()[:32]}"


# Plan leaves that read no files (rows made on the driver, ranges): no part of a digest,
# as ``inputFiles`` ignores them too.
_FILELESS_LEAVES = {"LocalRelation", "OneRowRelation", "Range", "LogicalRDD"}


class TableVersion(NamedTuple):
    """A Delta table as a query reads it."""

    location: str
    table_id: str
    version: int


def _delta_versions(frame: DataFrame) -> list[TableVersion] | None:
    """Each Delta table the frame's plan reads, sorted; None if it reads any other files, or
    the plan cannot be read so (then files are listed)."""
    try:
        leaves = frame._jdf.queryExecution().analyzed().collectLeaves().iterator()  # noqa: SLF001
        versions = []
        while leaves.hasNext():
            leaf = leaves.next()
            if leaf.nodeName() in _FILELESS_LEAVES:
                continue
            index = leaf.relation().location()  # a LogicalRelation over files, else an error
            if not index.getClass().getName().endswith(".TahoeLogFileIndex"):
                return None
            snapshot = index.snapshotAtAnalysis()
            location = index.deltaLog().dataPath().toString()
            versions.append(TableVersion(location, snapshot.metadata().id(), snapshot.version()))
        return sorted(versions)
    except Py4JError:  # another relation, or another Delta release's internals
        return None


def table_version(frame: DataFrame) -> TableVersion | None:
    """The version of the one Delta table ``frame`` reads (from its plan, no job); None if
    it reads several tables, or other files."""
    versions = _delta_versions(frame)
    return versions[0] if versions is not None and len(versions) == 1 else None


def changes_between(spark: SparkSession, since: TableVersion, until: TableVersion) -> DataFrame:
    """The rows the commits after ``since`` up to ``until`` changed (Delta's change data
    feed): the table's columns and ``_change_type`` (``insert``, ``delete``,
    ``update_preimage``, ``update_postimage``), read from those commits' files only.

    Reading raises (when planned or when run) unless the table recorded its changes over
    the whole range and ``VACUUM`` left their files.
    """
    return (
        spark.read.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", since.version + 1)
        .option("endingVersion", until.version)
        .load(until.location)
    )


def current_version(spark: SparkSession, path: str) -> int | None:
    """The current version of the Delta table at ``path``, from a query's plan (no Spark
    job); None if it cannot be read so."""
    version = table_version(spark.read.format("delta").load(path))
    return version.version if version else None


def upserts(rows: DataFrame) -> DataFrame:
    """``rows`` marked to be inserted, or to replace the row of the same key."""
    return rows.withColumn(CHANGE, F.lit(UPSERT))


def deletes(keys: DataFrame, schema_of: DataFrame) -> DataFrame:
    """The rows of these ``keys`` marked for deletion, in ``schema_of``'s columns."""
    key_columns = set(keys.columns)
    return keys.select(
        *[
            F.col(field.name)
            if field.name in key_columns
            else F.lit(None).cast(field.dataType).alias(field.name)
            for field in schema_of.schema
            if field.name != CHANGE
        ],
        F.lit(DELETE).alias(CHANGE),
    )


def is_table(spark: SparkSession, path: str) -> bool:
    """Whether ``path`` holds a Delta table (a ``_delta_log`` with at least one commit)."""
    return DeltaTable.isDeltaTable(spark, path)


def commit_metadata(row: Any) -> dict[str, Any]:
    """A history row's ``userMetadata`` as a mapping (empty when absent or foreign)."""
    try:
        metadata = json.loads(row["userMetadata"] or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}


def apply_changes(
    spark: SparkSession,
    path: str,
    changes: TableChanges,
    key: list[str],
    properties: dict[str, str] | None = None,
) -> bool:
    """Write ``changes`` to the table at ``path`` in one commit (created if absent):
    appended when they only insert keys the table lacks, else merged.

    ``properties`` (Delta table properties, e.g. ``delta.enableChangeDataFeed``) are set
    when the table is created, and on a table made without them when its changes are next
    computed (a commit of its own, before the changes').

    Nothing is computed when the changes are known to be none (``rows`` None), or when the
    table's last commit was derived from the same sources.
    A run that finds no change but new sources (a duplicate file added: the image table
    changed, the store did not) records them in an empty commit, so the next run skips.

    Returns:
        Whether a commit with rows was made.
    """
    if changes.rows is None:
        return False
    exists = is_table(spark, path)
    if exists and changes.sources and last_sources(spark, path) == changes.sources:
        logger.info("Delta table %s: its sources are unchanged, nothing to do.", path)
        return False
    if exists and properties:
        _add_missing_properties(spark, path, properties)
    built = changes.rows()
    counted = built if isinstance(built, CountedChanges) else None
    rows = counted.rows if counted else built
    # Persisted only when read twice (their kinds counted, then written). Once written, Delta
    # re-plans every cached query over the table (Spark's recache after a write): rows
    # derived from the table itself (the store's new contents) would be planned again.
    reread = exists and counted is None
    if reread:
        rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        columns = [name for name in rows.columns if name != CHANGE]
        with extra_commit_metadata(spark, {"sources": changes.sources}):
            if not exists:
                # A first run: the upserts are the table (an empty one still has a schema).
                upserted = rows.where(F.col(CHANGE) == UPSERT).select(*columns)
                upserted.write.format("delta").options(**(properties or {})).mode("overwrite").save(
                    path
                )
                return True
            kinds = counted.held if counted else _kinds_and_held(spark, path, rows, key)
            if not kinds:
                if changes.sources:  # a commit without rows, to record them
                    spark.sql(
                        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES "
                        f"('fruits.sources' = '{_sources_digest(changes.sources)}')"
                    )
                return False
            if kinds == {UPSERT: 0}:  # new keys only
                rows.select(*columns).write.format("delta").mode("append").save(path)
                return True
            matches = " AND ".join(f"target.`{name}` <=> changes.`{name}`" for name in key)
            values = {name: F.col(f"changes.`{name}`") for name in columns}
            is_upsert = F.col(f"changes.{CHANGE}") == UPSERT
            (
                DeltaTable.forPath(spark, path)
                .alias("target")
                .merge(rows.alias("changes"), matches)
                .whenMatchedDelete(condition=F.col(f"changes.{CHANGE}") == DELETE)
                .whenMatchedUpdate(condition=is_upsert, set=values)
                .whenNotMatchedInsert(condition=is_upsert, values=values)
                .execute()
            )
            return True
    finally:
        rows.unpersist()  # also what a maker persisted (the image table's read files)


def _add_missing_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> None:
    """Set the ``properties`` the table lacks or holds with other values (one commit)."""
    held = {
        row["key"]: row["value"]
        for row in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()
    }
    missing = {name: value for name, value in properties.items() if held.get(name) != value}
    if missing:
        logger.info("Delta table %s: setting its properties %s.", path, missing)
        assignments = ", ".join(f"'{name}' = '{value}'" for name, value in missing.items())
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({assignments})")


def _kinds_and_held(
    spark: SparkSession, path: str, rows: DataFrame, key: list[str]
) -> dict[str, int]:
    """``count_held`` against the table at ``path``."""
    return count_held(rows, spark.read.format("delta").load(path), key)


def count_held(changes: DataFrame, table: DataFrame, key: list[str]) -> dict[str, int]:
    """The kinds of change in ``changes``, each with how many of its keys ``table`` holds
    already (``CountedChanges.held``): one query of the key columns only.

    A maker whose changes' keys cost less than their rows (the projection is not computed
    for them) counts them so; its changes are then written once, not persisted.
    """
    held = table.select(*key, F.lit(True).alias(_HELD))
    counted = changes.select(CHANGE, *key).join(held, key, "left").groupBy(CHANGE)
    return {row[CHANGE]: row["held"] for row in counted.agg(F.count(_HELD).alias("held")).collect()}


def _sources_digest(sources: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:16]


# The recorded sources (as JSON) by table version: a version's history never changes, and a
# run asks twice for the store's (its maker, then its save); each read of the history is a
# Spark job.
_sources_of_version: dict[TableVersion, str] = {}


def last_sources(spark: SparkSession, path: str) -> dict[str, Any] | None:
    """The sources recorded by the table's last commit that recorded any (None if none of
    its last five did)."""
    version = table_version(spark.read.format("delta").load(path))
    if version not in _sources_of_version:
        recorded = None
        for row in latest_first(DeltaTable.forPath(spark, path).history(5)):
            metadata = commit_metadata(row)
            if version is not None and row["version"] > version.version:
                continue  # committed since the version was read: not this version's
            if "sources" in metadata:
                recorded = metadata["sources"]
                break
        if version is None:  # not known from the plan: not kept
            return recorded
        _sources_of_version[version] = json.dumps(recorded)
    return json.loads(_sources_of_version[version])


def latest_first(history: DataFrame) -> list[Any]:
    """A table's history rows, newest first.

    Delta reads the history on the driver into a local relation: collecting it as is
    costs no Spark job; sorting it in Spark took a shuffle, three jobs per call.
    """
    return sorted(history.collect(), key=lambda row: row["version"], reverse=True)


class extra_commit_metadata:  # noqa: N801 - used as a context manager
    """Add ``extra`` to the run's commit metadata for the commits made inside the block."""

    def __init__(self, spark: SparkSession, extra: dict[str, Any]) -> None:
        self._spark = spark
        self._extra = extra
        self._before: str | None = None

    def __enter__(self) -> None:
        self._before = self._spark.conf.get(RUN_METADATA_KEY, None)
        try:
            run = json.loads(self._before or "{}")
        except ValueError:
            run = {"run": self._before}
        self._spark.conf.set(RUN_METADATA_KEY, json.dumps({**run, **self._extra}))

    def __exit__(self, *exc_info: object) -> None:
        if self._before is None:
            self._spark.conf.unset(RUN_METADATA_KEY)
        else:
            self._spark.conf.set(RUN_METADATA_KEY, self._before)
