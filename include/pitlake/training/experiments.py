"""Experiments as configuration: ``conf/experiments/<name>.yaml``, checked when loaded.

A file names the use case, the features (``all``, a list of feature names, or ``{views: [...]}``), one
scikit-learn classifier (its class path and fixed params), an optional search space, the CV scheme, the
primary metric and a seed; ``variants`` (e.g. a feature ablation) override ``features`` per variant::

    name: hgb_search
    use_case: purchase_propensity
    features: all
    estimator: {class: sklearn.ensemble.HistGradientBoostingClassifier, params: {early_stopping: false}}
    search: {method: random, n_iter: 12, space: {learning_rate: {loguniform: [0.01, 0.3]}}}
    cv: {folds: 4}
    metric: roc_auc
    seed: 7

Every problem is a one-line :class:`~pitlake.core.errors.ConfigError` naming the file and the field.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pitlake.core.errors import ConfigError
from pitlake.core.settings import REPO_ROOT

EXPERIMENTS_DIR = REPO_ROOT / "conf" / "experiments"
METRICS = ("roc_auc", "pr_auc", "log_loss", "accuracy")
SEARCH_METHODS = ("random",)  # successive halving subsamples rows: the time-ordered folds cannot follow
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
TOP_LEVEL = {"name", "description", "use_case", "features", "estimator", "search", "cv", "metric", "seed", "variants"}


@dataclass(frozen=True)
class Experiment:
    name: str
    path: str
    use_case: str
    features: tuple[str, ...]
    estimator: str  # a class path under sklearn
    params: dict[str, Any]
    search_method: str | None = None
    n_iter: int = 0
    space: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    folds: int = 4
    metric: str = "roc_auc"
    seed: int = 7
    variants: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> features
    description: str = ""
    # The variants (the experiment's own name when it has none) whose features are "all": every feature
    # of the training set they run on (which may predate a feature a view declares today).
    all_features: tuple[str, ...] = ()


def load_experiment(path: str | Path) -> Experiment:
    """The experiment in ``path`` (a file, or a name under ``conf/experiments``), checked."""
    import yaml

    file = Path(path)
    if not file.suffix and not file.exists():
        file = EXPERIMENTS_DIR / f"{path}.yaml"
    if not file.is_file():
        known = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml")))
        raise ConfigError(f"experiment {str(path)!r} not found; known in conf/experiments: {known}")
    where = file.name

    def fail(field_name: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: {field_name}: {problem}")

    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping of fields, e.g. name, use_case, estimator")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise fail(unknown[0], f"unknown field; known: {', '.join(sorted(TOP_LEVEL))}")
    for required in ("name", "use_case", "estimator"):
        if required not in raw:
            raise fail(required, "missing")
    from pitlake.core.names import check_name
    from pitlake.training_set.build import get_use_case

    for field_name, value in (("name", raw["name"]), *((f"variants.{v}", v) for v in raw.get("variants") or {})):
        try:  # it names MLflow runs, params and metrics, and the report's folder
            check_name(str(value), "name")
        except ConfigError as err:
            raise fail(field_name, str(err)) from None

    try:
        use_case = get_use_case(str(raw["use_case"]))
    except ConfigError as err:
        raise fail("use_case", str(err)) from None
    features = _features(raw.get("features", "all"), use_case, fail, "features")
    specs = {
        str(name): (spec or {}).get("features", "all") if isinstance(spec, dict) else spec
        for name, spec in (raw.get("variants") or {}).items()
    }
    variants = {name: _features(spec, use_case, fail, f"variants.{name}.features") for name, spec in specs.items()}
    all_features = tuple(
        n for n, spec in (specs or {str(raw["name"]): raw.get("features")}).items() if spec in (None, "all")
    )
    estimator, params = _estimator(raw["estimator"], fail)
    search = raw.get("search") or {}
    method = search.get("method") if search else None
    if search and method not in SEARCH_METHODS:
        raise fail("search.method", f"{method!r} is not one of {', '.join(SEARCH_METHODS)}")
    space = {str(k): _distribution(k, v, estimator, fail) for k, v in (search.get("space") or {}).items()}
    if search and not space:
        raise fail("search.space", "a search needs at least one parameter to vary")
    n_iter = int(search.get("n_iter", 10)) if search else 0
    if search and n_iter < 1:
        raise fail("search.n_iter", f"must be at least 1, got {n_iter}")
    folds = (raw.get("cv") or {}).get("folds", 4)
    if not isinstance(folds, int) or folds < 2:
        raise fail("cv.folds", f"must be a whole number >= 2, got {folds!r}")
    metric = raw.get("metric", "roc_auc")
    if metric not in METRICS:
        raise fail("metric", f"{metric!r} is not one of {', '.join(METRICS)}")
    seed = raw.get("seed", 7)
    if not isinstance(seed, int):
        raise fail("seed", f"must be a whole number, got {seed!r}")
    return Experiment(
        name=str(raw["name"]), path=str(file), use_case=use_case.name, features=features, estimator=estimator,
        params=params, search_method=method, n_iter=n_iter, space=space, folds=folds, metric=str(metric), seed=seed,
        variants=variants, description=str(raw.get("description") or ""), all_features=all_features,
    )  # fmt: skip


def _features(spec: Any, use_case: Any, fail: Any, field_name: str) -> tuple[str, ...]:
    """``all``, a list of feature names, or ``{views: [...]}``: the use case's features it selects."""
    available = use_case.feature_columns()
    if spec in (None, "all"):
        return tuple(available)
    if isinstance(spec, dict) and set(spec) == {"views"}:
        views = {v.name: v for v in use_case.feature_views()}
        names = []
        for view in spec["views"] or []:
            if view not in views:
                raise fail(field_name, f"view {view!r} is not one of {use_case.name}'s: {', '.join(views)}")
            names.extend(views[view].feature_names())
        return tuple(names)
    if isinstance(spec, list) and spec:
        unknown = [f for f in spec if f not in available]
        if unknown:
            raise fail(field_name, f"{unknown[0]!r} is a feature no view of {use_case.name} declares")
        return tuple(str(f) for f in spec)
    raise fail(field_name, "use all, a list of feature names, or {views: [view, ...]}")


def _estimator(spec: Any, fail: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(spec, dict) or "class" not in spec:
        raise fail("estimator", "give {class: sklearn.<module>.<Class>, params: {...}}")
    path, params = str(spec["class"]), dict(spec.get("params") or {})
    for name, value in params.items():  # the manifest stores params as JSON: a refit must read back the same
        if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
            raise fail(f"estimator.params.{name}", "a mapping needs string keys (JSON would change them)")
    module_name, _, class_name = path.rpartition(".")
    if not module_name.startswith("sklearn."):
        raise fail("estimator.class", f"{path!r}: only scikit-learn classifiers (sklearn.*) are allowed")
    try:
        cls: Any = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise fail("estimator.class", f"{path!r}: no such class in scikit-learn") from None
    if not (inspect.isclass(cls) and hasattr(cls, "predict_proba")):
        raise fail("estimator.class", f"{path!r} is not a classifier with predict_proba")
    instance: Any = cls()
    accepted = set(instance.get_params())
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise fail(f"estimator.params.{unknown[0]}", f"{class_name} has no such parameter")
    return path, params


def _distribution(name: Any, spec: Any, estimator: str, fail: Any) -> dict[str, list[Any]]:
    field_name = f"search.space.{name}"
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise fail(field_name, f"give one of {', '.join(DISTRIBUTIONS)}, e.g. {{loguniform: [0.001, 10]}}")
    kind, values = next(iter(spec.items()))
    module_name, _, class_name = estimator.rpartition(".")
    if name not in getattr(importlib.import_module(module_name), class_name)().get_params():
        raise fail(field_name, f"{class_name} has no parameter {name!r}")
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise fail(field_name, "choice needs a non-empty list")
        return {kind: values}
    if not (isinstance(values, list) and len(values) == 2 and all(isinstance(v, int | float) for v in values)):
        raise fail(field_name, f"{kind} needs [low, high]")
    low, high = values
    if not low < high or (kind == "loguniform" and low <= 0):
        raise fail(
            field_name, f"bad range [{low}, {high}]: need low < high" + (" and low > 0" if kind == "loguniform" else "")
        )
    if kind == "int" and not (isinstance(low, int) and isinstance(high, int)):
        raise fail(field_name, "int needs whole-number bounds")
    return {kind: [low, high]}
