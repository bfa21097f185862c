"""The online store: the latest feature row per (view, entity key), written by materialization, read by serving.

One stored row per view and key: its ``feature_time`` and ``computed_at`` (UTC microseconds) and the
view's feature values as a JSON array, in the order of the view's ``feature_names()``.

**Monotonic writes.** A write replaces the stored row only when its ``(feature_time, computed_at)``
is greater: an older feature row never overwrites a newer one, also when two materializations
race (the comparison and the write are one statement in SQLite and one Lua script in Redis, each
atomic); a rebuilt day (same ``feature_time``, later ``computed_at``) replaces what it corrects; a
rerun writes nothing new.

Two implementations of :class:`OnlineStore`:

* :class:`SQLiteStore` (embedded default): ``PITLAKE_HOME/online/online.sqlite`` in WAL mode, so
  the app reads while a materialization writes.
* :class:`RedisStore` (scale-out): one string per key, ``pitlake:f:<view>:<key>`` =
  ``"<feature_time> <computed_at> <values>"``; a read is one ``MGET`` per view.

Each materialization is recorded (view, table, Delta version, ``as_of``, rows, keys written) and
the serving app reads the latest per view to know the instant its features are valid as of.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from pitlake.core.errors import ConfigError, PitlakeError
from pitlake.core.settings import Settings

# (entity key, feature_time µs, computed_at µs, values as a JSON array)
StoredRow = tuple[str, int, int, bytes]
KEY_SEPARATOR = "\x1f"


class StoreUnavailable(PitlakeError):
    """The online store cannot be read (Redis down, the SQLite file gone or locked); retryable."""

    retryable = True


def entity_key(values: Sequence[object]) -> str:
    """The stored key of an entity: its key values in the view's key order (one key: the value itself)."""
    return values[0] if len(values) == 1 and isinstance(values[0], str) else KEY_SEPARATOR.join(map(str, values))


class OnlineStore(Protocol):
    kind: str

    def write(self, view: str, rows: Iterable[StoredRow]) -> int:
        """Write rows monotonically; returns how many stored rows changed."""
        ...

    def read(self, view: str, keys: Sequence[str]) -> dict[str, tuple[int, int, bytes]]:
        """The stored ``(feature_time, computed_at, values)`` of each key that has a row."""
        ...

    def read_views(self, views: Sequence[str], keys: Sequence[str]) -> dict[str, dict[str, tuple[int, int, bytes]]]:
        """:meth:`read` of several views at once (one round trip where the store allows)."""
        ...

    def keys(self, view: str) -> list[str]:
        """Every key the store holds a row of for ``view`` (e.g. the products a catalog view lists)."""
        ...

    def record_materialization(self, record: dict[str, Any]) -> None: ...

    def materializations(self, view: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The latest materialization records, newest first."""
        ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


def last_materialization(store: OnlineStore, view: str) -> dict[str, Any] | None:
    found = store.materializations(view, limit=1)
    return found[0] if found else None


class SQLiteStore:
    """The embedded online store: one SQLite file, a table of latest rows and one of materializations."""

    kind = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection; the lock serialises the app's event loop thread with a flusher or a test thread.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS features (
                view TEXT NOT NULL, entity_key TEXT NOT NULL, feature_time INTEGER NOT NULL,
                computed_at INTEGER NOT NULL, feature_values BLOB NOT NULL,
                PRIMARY KEY (view, entity_key)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS materializations (
                id INTEGER PRIMARY KEY AUTOINCREMENT, view TEXT NOT NULL, record TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS materializations_by_view ON materializations (view, id);
            """
        )

    def write(self, view: str, rows: Iterable[StoredRow]) -> int:
        sql = (
            "INSERT INTO features VALUES (?, ?, ?, ?, ?) ON CONFLICT (view, entity_key) DO UPDATE SET "
            "feature_time = excluded.feature_time, computed_at = excluded.computed_at, "
            "feature_values = excluded.feature_values "
            "WHERE (excluded.feature_time, excluded.computed_at) > (features.feature_time, features.computed_at)"
        )
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, ((view, k, ft, ca, v) for k, ft, ca, v in rows))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return self._db.total_changes - before

    def read(self, view: str, keys: Sequence[str]) -> dict[str, tuple[int, int, bytes]]:
        if not keys:
            return {}
        out: dict[str, tuple[int, int, bytes]] = {}
        with self._lock, _unavailable(f"the SQLite online store {self.path}"):
            for i in range(0, len(keys), 500):  # SQLite's bound-parameter limit is far above; keep plans small
                chunk = keys[i : i + 500]
                marks = ",".join("?" * len(chunk))
                cursor = self._db.execute(
                    "SELECT entity_key, feature_time, computed_at, feature_values FROM features "
                    f"WHERE view = ? AND entity_key IN ({marks})",
                    (view, *chunk),
                )
                for key, ft, ca, values in cursor:
                    out[key] = (ft, ca, values)
        return out

    def read_views(self, views: Sequence[str], keys: Sequence[str]) -> dict[str, dict[str, tuple[int, int, bytes]]]:
        return {view: self.read(view, keys) for view in views}

    def keys(self, view: str) -> list[str]:
        with self._lock, _unavailable(f"the SQLite online store {self.path}"):
            cursor = self._db.execute("SELECT entity_key FROM features WHERE view = ? ORDER BY entity_key", (view,))
            return [key for (key,) in cursor]

    def record_materialization(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO materializations (view, record) VALUES (?, ?)", (record["view"], json.dumps(record))
            )

    def materializations(self, view: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            if view is None:
                cursor = self._db.execute("SELECT record FROM materializations ORDER BY id DESC LIMIT ?", (limit,))
            else:
                cursor = self._db.execute(
                    "SELECT record FROM materializations WHERE view = ? ORDER BY id DESC LIMIT ?", (view, limit)
                )
            return [json.loads(r) for (r,) in cursor]

    def ping(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            self._db.close()


# KEYS[1] the row's key; ARGV: feature_time, computed_at, values. The value is "<ft> <ca> <values>",
# replaced only if (ft, ca) is greater (microsecond integers: exact in Lua's doubles up to 2^53).
_MONOTONIC_SET = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ft, ca = string.match(cur, '^(%d+) (%d+) ')
  ft, ca = tonumber(ft), tonumber(ca)
  local nft, nca = tonumber(ARGV[1]), tonumber(ARGV[2])
  if nft < ft or (nft == ft and nca <= ca) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
return 1
"""


class RedisStore:
    """The scale-out online store on a Redis server (``PITLAKE_REDIS_URL``): one string per row,
    ``pitlake:f:<view>:<key>`` = ``"<feature_time> <computed_at> <values>"``, so a read of any number of
    keys is one ``MGET``."""

    kind = "redis"
    BATCH = 2000

    def __init__(self, url: str, prefix: str = "pitlake") -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._set = self._redis.register_script(_MONOTONIC_SET)

    def _key(self, view: str, key: str) -> str:
        return f"{self.prefix}:f:{view}:{key}"

    def write(self, view: str, rows: Iterable[StoredRow]) -> int:
        changed = 0
        batch: list[StoredRow] = []

        def flush() -> int:
            pipe = self._redis.pipeline(transaction=False)
            for key, ft, ca, values in batch:
                self._set(keys=[self._key(view, key)], args=[ft, ca, values], client=pipe)
            done = sum(int(x) for x in pipe.execute())
            batch.clear()
            return done

        for row in rows:
            batch.append(row)
            if len(batch) >= self.BATCH:
                changed += flush()
        if batch:
            changed += flush()
        return changed

    def read(self, view: str, keys: Sequence[str]) -> dict[str, tuple[int, int, bytes]]:
        return self.read_views([view], keys)[view]

    def read_views(self, views: Sequence[str], keys: Sequence[str]) -> dict[str, dict[str, tuple[int, int, bytes]]]:
        if not keys:
            return {view: {} for view in views}
        with _unavailable("the Redis online store"):
            answers: list[bytes | None] = self._redis.mget([self._key(view, k) for view in views for k in keys])  # type: ignore[assignment]
        out: dict[str, dict[str, tuple[int, int, bytes]]] = {}
        for i, view in enumerate(views):
            rows = out[view] = {}
            for key, stored in zip(keys, answers[i * len(keys) : (i + 1) * len(keys)], strict=True):
                if stored is not None:
                    ft, ca, values = stored.split(b" ", 2)
                    rows[key] = (int(ft), int(ca), values)
        return out

    def keys(self, view: str) -> list[str]:
        prefix = self._key(view, "")
        with _unavailable("the Redis online store"):
            pattern = "".join("\\" + c if c in "*?[]\\" else c for c in prefix) + "*"  # the view's keys only
            found = self._redis.scan_iter(match=pattern, count=1000)
            return sorted(k.decode()[len(prefix) :] for k in found)

    def record_materialization(self, record: dict[str, Any]) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(f"{self.prefix}:materializations:{record['view']}", json.dumps(record))
        pipe.lpush(f"{self.prefix}:materializations", json.dumps(record))
        pipe.ltrim(f"{self.prefix}:materializations", 0, 999)
        pipe.execute()

    def materializations(self, view: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        name = f"{self.prefix}:materializations" + (f":{view}" if view else "")
        return [json.loads(r) for r in self._redis.lrange(name, 0, limit - 1)]

    def ping(self) -> bool:
        import redis

        try:
            return bool(self._redis.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._redis.close()


@contextlib.contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """Store errors as one retryable line (the app answers 503 with it)."""
    try:
        yield
    except (sqlite3.Error, OSError) as err:
        raise StoreUnavailable(
            f"{what} cannot be read: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from None
    except Exception as err:
        if type(err).__module__.startswith("redis"):
            raise StoreUnavailable(f"{what} cannot be read: {type(err).__name__}: {err}") from None
        raise


def redacted(url: str) -> str:
    """``url`` without its password (for messages and /health)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(settings: Settings) -> Path:
    return settings.online_dir / "online.sqlite"


def open_store(settings: Settings, kind: str | None = None) -> OnlineStore:
    """The configured online store (``PITLAKE_ONLINE_STORE``), or ``kind`` when given."""
    kind = kind or settings.online_store
    if kind == "sqlite":
        return SQLiteStore(sqlite_path(settings))
    if kind == "redis":
        store = RedisStore(settings.redis_url)
        if not store.ping():
            raise ConfigError(
                f"the Redis online store at {redacted(settings.redis_url)} does not answer: start redis-server or set "
                "PITLAKE_REDIS_URL (or PITLAKE_ONLINE_STORE=sqlite for the embedded store)"
            )
        return store
    raise ConfigError(f"unknown online store {kind!r}: use 'sqlite' or 'redis'")
