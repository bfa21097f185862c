"""A JVM-free overview of the lake (delta-rs): every table, its Delta version and row count."""

from __future__ import annotations

from pathlib import Path

from pitlake.settings import Settings


def lake_tables(settings: Settings) -> list[tuple[str, Path]]:
    if not settings.lake.is_dir():
        return []
    return [
        (f"{layer.name}.{table.name}", table)
        for layer in sorted(settings.lake.iterdir())
        if layer.is_dir()
        for table in sorted(layer.iterdir())
        if (table / "_delta_log").is_dir()
    ]


def print_lake_summary(settings: Settings) -> None:
    from deltalake import DeltaTable

    tables = lake_tables(settings)
    if not tables:
        print(f"no Delta tables under {settings.lake} yet")
        return
    print(f"Delta tables under {settings.lake}:")
    print(f"  {'table':<32} {'version':>7} {'rows':>10}")
    for name, path in tables:
        dt = DeltaTable(str(path))
        rows = dt.to_pyarrow_dataset().count_rows()
        print(f"  {name:<32} {dt.version():>7} {rows:>10}")
