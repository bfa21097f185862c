"""The Delta jars are checked against the SHA-256 recorded in conf/delta-jars.sha256."""

from __future__ import annotations

import hashlib
import shutil

import pytest
from pitlake.core import jars
from pitlake.core.errors import ConfigError
from pitlake.core.settings import DELTA_VERSION


def test_the_recorded_checksums_cover_the_pinned_delta_version():
    names = set(jars.expected_checksums())
    assert names == {f"delta-spark_4.1_2.13-{DELTA_VERSION}.jar", f"delta-storage-{DELTA_VERSION}.jar"}
    assert all(len(d) == 64 for d in jars.expected_checksums().values())


def test_the_installed_jars_match_their_recorded_checksums(repo_settings):
    if not repo_settings.delta_jars():
        pytest.skip("Delta jars not installed: run `make install`")
    jars.verify_jars(repo_settings.jars_dir)  # raises on a mismatch


def test_a_tampered_jar_is_refused_and_after_a_download_deleted(tmp_path):
    good, bad = b"the real jar", b"something else"
    name = f"delta-storage-{DELTA_VERSION}.jar"
    expected = {name: hashlib.sha256(good).hexdigest()}
    (tmp_path / name).write_bytes(good)
    jars.verify_jars(tmp_path, expected)
    (tmp_path / name).write_bytes(bad)
    with pytest.raises(ConfigError, match=rf"^{name} has SHA-256 {hashlib.sha256(bad).hexdigest()}, expected"):
        jars.verify_jars(tmp_path, expected)
    assert (tmp_path / name).exists()  # a check of jars already there leaves them to the operator
    with pytest.raises(ConfigError, match="deleted it; rerun `make install`"):
        jars.verify_jars(tmp_path, expected, delete_bad=True)
    assert not (tmp_path / name).exists()


def test_a_jar_without_a_recorded_checksum_is_refused(tmp_path):
    (tmp_path / "delta-spark_4.1_2.13-9.9.9.jar").write_bytes(b"x")
    with pytest.raises(ConfigError, match="has no SHA-256 recorded"):
        jars.verify_jars(tmp_path, {})


def test_other_jars_in_the_folder_are_not_checked(tmp_path):
    shutil.copy(__file__, tmp_path / "some-driver.jar")
    jars.verify_jars(tmp_path, {})
