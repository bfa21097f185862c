"""Maintenance: OPTIMIZE + VACUUM never removes a Delta version a registered model pins."""

from __future__ import annotations

import pytest
from pitlake.core.delta_io import read
from pitlake.maintenance import compact as maintenance

ROWS = {0: [(1, "a"), (2, "b")], 1: [(3, "c")], 2: [(4, "d"), (5, "e")]}


def _write_versions(spark, path: str) -> None:
    for version in sorted(ROWS):
        df = spark.createDataFrame(ROWS[version], "customer_id INT, segment STRING").repartition(2)
        df.write.format("delta").mode("overwrite").save(path)


def _rows(spark, path: str, version: int) -> list[tuple[int, str]]:
    return sorted((r.customer_id, r.segment) for r in read(spark, path, version).collect())


def test_vacuum_keeps_pinned_versions_and_removes_unpinned(spark, lake, monkeypatch):
    path = str(lake.lake / "features" / "toy")
    _write_versions(spark, path)
    assert _rows(spark, path, 0) == [(1, "a"), (2, "b")]
    check = maintenance.RETENTION_CHECK
    assert spark.conf.get(check, None) is None or spark.conf.get(check) == "true"
    before_check = spark.conf.get(check, None)

    # Pinned: version 0 must survive even a 0-hour VACUUM.
    monkeypatch.setattr(maintenance, "pinned_versions", lambda settings: {path: {0}})
    listing: list[str | None] = []  # the listing parallelism each table's VACUUM ran with
    maintain_table = maintenance.maintain_table

    def recording(spark_, *args, **kwargs):
        listing.append(spark_.conf.get(maintenance.LISTING_PARALLELISM, None))
        return maintain_table(spark_, *args, **kwargs)

    monkeypatch.setattr(maintenance, "maintain_table", recording)
    result = maintenance.run_maintenance(spark, lake, retain_hours=0, allow_short_retention=True)
    assert listing and set(listing) == {"2"}  # one task per core of the local[2] test session
    toy = result["tables"]["features.toy"]
    assert toy["version_before"] == 2
    assert toy["version_after"] > 2  # properties + OPTIMIZE committed
    assert toy["pinned_versions_kept"] == [0]
    assert toy["retain_hours"] >= 1  # widened to cover version 0's commit
    assert set(toy["table_properties_set"]) == {maintenance.DELETED_FILE_RETENTION, maintenance.LOG_RETENTION}
    assert _rows(spark, path, 0) == [(1, "a"), (2, "b")]
    assert _rows(spark, path, 1) == [(3, "c")]
    assert sorted((r.customer_id, r.segment) for r in read(spark, path).collect()) == [(4, "d"), (5, "e")]
    assert spark.conf.get(check, None) == before_check  # the safety check is restored
    assert spark.conf.get(maintenance.LISTING_PARALLELISM, None) is None  # and Spark's listing default

    # Unpinned: a 0-hour VACUUM removes version 0's files; the latest version is intact.
    monkeypatch.setattr(maintenance, "pinned_versions", lambda settings: {})
    listing.clear()
    spark.conf.set(maintenance.LISTING_PARALLELISM, "3")  # a session's own choice is kept
    try:
        dry = maintenance.run_maintenance(spark, lake, retain_hours=0, dry_run=True, allow_short_retention=True)[
            "tables"
        ]["features.toy"]
        assert set(listing) == {"3"} and spark.conf.get(maintenance.LISTING_PARALLELISM) == "3"
    finally:
        spark.conf.unset(maintenance.LISTING_PARALLELISM)
    assert dry["vacuum_files_to_delete"] > 0 and not dry["vacuumed"]
    assert dry["version_after"] == dry["version_before"] and dry["data_files_after"] == dry["data_files_before"]
    assert _rows(spark, path, 0) == [(1, "a"), (2, "b")]  # a dry run changes nothing
    result = maintenance.run_maintenance(spark, lake, retain_hours=0, allow_short_retention=True)
    toy = result["tables"]["features.toy"]
    assert toy["pinned_versions"] == [] and toy["retain_hours"] == 0 and toy["vacuumed"]
    assert toy["data_files_after"] < toy["data_files_before"]
    assert maintenance._missing_files(spark, path, 0)  # version 0 reads files that are gone
    with pytest.raises(Exception, match=r"(?i)not.?found|does not exist|FAILED_READ_FILE"):
        read(spark, path, 0).collect()
    assert sorted((r.customer_id, r.segment) for r in read(spark, path).collect()) == [(4, "d"), (5, "e")]
    assert spark.conf.get(check, None) == before_check


def test_interval_hours():
    assert maintenance.interval_hours("interval 7 days", 0) == 168
    assert maintenance.interval_hours("interval 36 hours", 0) == 36
    assert maintenance.interval_hours("1 week", 0) == 168
    assert maintenance.interval_hours(None, 720) == 720
    assert maintenance.interval_hours("soon", 5) == 5


@pytest.mark.parametrize("hours", [0, 24, 167.5])
def test_a_retention_below_deltas_default_is_refused_before_anything_runs(lake, hours):
    from pitlake.core.errors import InputError

    with pytest.raises(InputError, match=rf"^--retain-hours {hours:g} is below Delta's default of 168 hours: "):
        maintenance.run_maintenance(None, lake, retain_hours=hours)  # no Spark session: refused first


def test_the_maintenance_job_refuses_a_short_retention_in_one_line(tmp_path):
    import subprocess
    import sys

    from pitlake.core.settings import REPO_ROOT

    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "jobs" / "maintenance.py"), "--retain-hours", "1"],
        capture_output=True, text=True, check=False,
        env={"PITLAKE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().startswith("pitlake maintenance: error: --retain-hours 1 is below Delta's default")
    assert len(out.stderr.strip().splitlines()) == 1
