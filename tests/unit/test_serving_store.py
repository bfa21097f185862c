"""The online stores (SQLite, and Redis on a real redis-server) and materialization from Delta, without a JVM."""

from __future__ import annotations

import random
import threading
from datetime import datetime

import pytest
from pitlake.features import get_view
from pitlake.serving.materialize import materialize, micros
from pitlake.serving.store import RedisStore, SQLiteStore, sqlite_path

from tests.builders import write_feature_day

ACTIVITY = get_view("customer_activity")
PROFILE = get_view("customer_profile")


def open_kind(kind: str, lake, redis_url_factory) -> SQLiteStore | RedisStore:
    if kind == "sqlite":
        return SQLiteStore(sqlite_path(lake))
    return RedisStore(redis_url_factory(), prefix=f"t{random.randrange(10**9)}")


@pytest.fixture(params=["sqlite", "redis"])
def stores(request, lake):
    """Two independent connections to one store (two writers), of each kind."""
    if request.param == "sqlite":
        path = sqlite_path(lake)
        pair = (SQLiteStore(path), SQLiteStore(path))
    else:
        url = request.getfixturevalue("redis_url")
        prefix = f"t{random.randrange(10**9)}"
        pair = (RedisStore(url, prefix=prefix), RedisStore(url, prefix=prefix))
    yield pair
    for s in pair:
        s.close()


def test_a_write_never_replaces_a_newer_row_and_a_rerun_changes_nothing(stores):
    store, _ = stores
    assert store.write("v", [("c1", 200, 10, b"[1]")]) == 1
    assert store.write("v", [("c1", 100, 99, b"[0]")]) == 0  # older feature_time, however recent its write
    assert store.read("v", ["c1", "nobody"]) == {"c1": (200, 10, b"[1]")}
    assert store.write("v", [("c1", 200, 11, b"[2]")]) == 1  # same feature_time, rebuilt later: replaces
    assert store.write("v", [("c1", 200, 11, b"[2]")]) == 0  # the same row again: no change
    assert store.write("v", [("c1", 300, 1, b"[3]"), ("c2", 100, 1, b"[4]")]) == 2
    assert store.read("v", ["c2", "c1"]) == {"c1": (300, 1, b"[3]"), "c2": (100, 1, b"[4]")}
    assert store.read("other_view", ["c1"]) == {}


def test_a_view_lists_the_keys_it_holds_and_no_other_views(stores):
    store, _ = stores
    store.write("products", [("p2", 1, 1, b"[0]"), ("p1", 1, 1, b"[0]")])
    store.write("products_v2", [("p9", 1, 1, b"[0]")])  # a view whose name starts like the other's
    store.write("pairs", [("c1\x1fp1", 1, 1, b"[0]")])
    assert store.keys("products") == ["p1", "p2"]
    assert store.keys("pairs") == ["c1\x1fp1"] and store.keys("nothing") == []


def test_two_racing_materializations_leave_every_key_at_its_newest_row(stores):
    """Each key has rows with feature_time 1..20; two writers send them split at random, in shuffled
    batches, at once: whatever the interleaving, the newest row (20) is what stays."""
    rng = random.Random(3)
    keys = [f"c{i}" for i in range(150)]
    rows = [(k, ft, 0, str(ft).encode()) for k in keys for ft in range(1, 21)]
    rng.shuffle(rows)
    halves = rows[::2], rows[1::2]
    barrier = threading.Barrier(2)

    def writer(store, part):
        barrier.wait()
        for i in range(0, len(part), 50):
            store.write("v", part[i : i + 50])

    threads = [threading.Thread(target=writer, args=(s, p)) for s, p in zip(stores, halves, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].read("v", keys) == {k: (20, 0, b"20") for k in keys}


def test_materialization_is_incremental_idempotent_and_follows_a_rebuilt_day(lake):
    store = SQLiteStore(sqlite_path(lake))
    write_feature_day(lake, ACTIVITY, "2026-01-01", [{"customer_id": "c1", "count_page_views_1d": 1},
                                                    {"customer_id": "c2", "count_page_views_1d": 2}],
                      "2026-01-02T01:00:00")  # fmt: skip
    write_feature_day(lake, ACTIVITY, "2026-01-02", [{"customer_id": "c1", "count_page_views_1d": 3}],
                      "2026-01-03T01:00:00")  # fmt: skip

    # As of Jan 2 00:00: day 2's rows (feature_time Jan 3) are in the table but not valid yet.
    first = materialize(lake, ACTIVITY, as_of=datetime(2026, 1, 2), store=store)
    assert (first.mode, first.delta_version, first.rows_read, first.keys_written) == ("full", 1, 2, 2)
    assert store.read("customer_activity", ["c1"])["c1"][0] == micros(datetime(2026, 1, 2))

    again = materialize(lake, ACTIVITY, as_of=datetime(2026, 1, 2), store=store)
    assert (again.mode, again.partitions_read, again.keys_written) == ("incremental", [], 0)

    # The next day: only its partition is read and only c1 (whose row changed) is touched.
    nxt = materialize(lake, ACTIVITY, as_of=datetime(2026, 1, 3), store=store)
    assert (nxt.mode, nxt.partitions_read, nxt.rows_read, nxt.keys_in_batch, nxt.keys_written) == (
        "incremental", ["2026-01-02"], 1, 1, 1,
    )  # fmt: skip

    # Late data rebuilds day 1: c2's row (still its latest) is replaced, c1's newer row is kept.
    write_feature_day(lake, ACTIVITY, "2026-01-01", [{"customer_id": "c1", "count_page_views_1d": 10},
                                                    {"customer_id": "c2", "count_page_views_1d": 20}],
                      "2026-01-03T05:00:00")  # fmt: skip
    late = materialize(lake, ACTIVITY, as_of=datetime(2026, 1, 3), store=store)
    assert (late.delta_version, late.partitions_read, late.keys_in_batch, late.keys_written) == (
        2,
        ["2026-01-01"],
        2,
        1,
    )
    stored = store.read("customer_activity", ["c1", "c2"])
    assert stored["c1"][2].startswith(b"[3,") and stored["c2"][2].startswith(b"[20,")
    assert stored["c2"][1] == micros(datetime(2026, 1, 3, 5))

    records = store.materializations("customer_activity")
    assert [(r["delta_version"], r["as_of"], r["keys_written"]) for r in records] == [
        (2, "2026-01-03T00:00:00", 1), (1, "2026-01-03T00:00:00", 1),
        (1, "2026-01-02T00:00:00", 0), (1, "2026-01-02T00:00:00", 2),
    ]  # fmt: skip


def test_materializing_a_pinned_version_reads_that_version(lake):
    store = SQLiteStore(sqlite_path(lake))
    write_feature_day(lake, PROFILE, "2026-01-01", [{"customer_id": "c1", "segment": "old"}], "2026-01-02T01:00:00")
    write_feature_day(lake, PROFILE, "2026-01-01", [{"customer_id": "c1", "segment": "new"}], "2026-01-02T02:00:00")
    pinned = materialize(lake, PROFILE, as_of=datetime(2026, 1, 2), version=0, store=store, full=True)
    assert pinned.delta_version == 0
    assert store.read("customer_profile", ["c1"])["c1"][2] == b'["old",null,null,null]'
    materialize(lake, PROFILE, as_of=datetime(2026, 1, 2), store=store)
    assert store.read("customer_profile", ["c1"])["c1"][2] == b'["new",null,null,null]'


def test_redis_materialization_matches_sqlite(lake, redis_url):
    rows = [{"customer_id": f"c{i}", "count_page_views_1d": i, "sum_purchase_amount_7d": i / 4} for i in range(30)]
    write_feature_day(lake, ACTIVITY, "2026-01-01", rows, "2026-01-02T01:00:00")
    sqlite, redis = SQLiteStore(sqlite_path(lake)), RedisStore(redis_url, prefix=f"t{random.randrange(10**9)}")
    a = materialize(lake, ACTIVITY, as_of=datetime(2026, 1, 2), store=sqlite)
    b = materialize(lake, ACTIVITY, as_of=datetime(2026, 1, 2), store=redis)
    assert a.keys_written == b.keys_written == 30
    keys = [f"c{i}" for i in range(31)]
    assert sqlite.read("customer_activity", keys) == redis.read("customer_activity", keys)
    assert redis.materializations("customer_activity")[0]["keys_written"] == 30


def test_a_store_that_went_away_is_one_retryable_line():
    from pitlake.serving.store import StoreUnavailable

    gone = RedisStore("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with pytest.raises(StoreUnavailable, match=r"^the Redis online store cannot be read: ConnectionError") as err:
        gone.read("customer_activity", ["c1"])
    assert err.value.retryable and "\n" not in str(err.value)
    assert not gone.ping()


def test_a_redis_url_in_a_message_hides_its_password():
    from pitlake.serving.store import redacted

    assert redacted("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
