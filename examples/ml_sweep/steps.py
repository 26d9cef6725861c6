"""The sweep's steps: load and split the data, check the grids, fit one configuration,
pick a family's best, compare the winners on the held-out set.

Plain scikit-learn functions; the pipeline in ``sweep.py`` binds their arguments by name.
A configuration is named by its hyper-parameters (``max_depth=4, n_estimators=50``): that
text names the Map iteration's branch in the run log and dashboard. Each ``fit`` reads
only its own configuration (the Map item), not the whole grid, so with step caching a
grid point added to the parameters file is the only one fitted on the next run.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from examples.ml_sweep.report import FamilyResult, write_report

REPORT_FOLDER = Path("report")


class GridError(ValueError):
    """The ``grids`` parameter does not describe a grid for every model family."""


@dataclass(frozen=True)
class Configuration:
    """One point of a family's grid; its text names its Map iteration."""

    hyper_parameters: dict[str, Any]

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.hyper_parameters.items())


@dataclass(frozen=True)
class Family:
    """A model family: its estimator, and the parameter names its steps share.

    Each family's values carry its name, so the Parallel's branches never overwrite
    each other when their parameters are merged back.
    """

    name: str
    estimator: type[BaseEstimator]
    scaled: bool = False  # standardise the features first (linear models need it)

    @property
    def configs(self) -> str:
        return f"{self.name}_configs"

    @property
    def cv_accuracy(self) -> str:
        return f"{self.name}_cv_accuracy"

    @property
    def models(self) -> str:
        return f"{self.name}_models"

    @property
    def result(self) -> str:
        return f"{self.name}_result"

    @property
    def best_model(self) -> str:
        return f"{self.name}_best_model"

    def configurations(self, grid: dict[str, list[Any]]) -> list[Configuration]:
        """Every combination of the grid, in the grid's order."""
        keys = list(grid)
        return [
            Configuration(dict(zip(keys, values, strict=True)))
            for values in itertools.product(*grid.values())
        ]

    def build(self, hyper_parameters: dict[str, Any], seed: int) -> BaseEstimator:
        estimator = self.estimator(**hyper_parameters)
        if "random_state" in estimator.get_params() and "random_state" not in hyper_parameters:
            estimator.set_params(random_state=seed)
        return make_pipeline(StandardScaler(), estimator) if self.scaled else estimator

    def fit(
        self, config: Configuration, X_train: Any, y_train: Any, cv_folds: int, seed: int = 0
    ) -> tuple[float, BaseEstimator]:
        """Cross-validate one configuration, then fit it on the whole training set."""
        model = self.build(config.hyper_parameters, seed)
        scores = cross_val_score(model, X_train, y_train, cv=cv_folds)
        print(f"{self.name} {config}: accuracy {scores.mean():.4f} +/- {scores.std():.4f}")
        model.fit(X_train, y_train)
        return round(float(scores.mean()), 4), model

    def pick_best(self, **parameters: Any) -> tuple[FamilyResult, BaseEstimator]:
        """The configuration with the highest cross-validated accuracy, and its model.

        Takes every parameter because the names it reads carry the family's name.
        """
        configs = [str(config) for config in parameters[self.configs]]
        accuracy = dict(zip(configs, parameters[self.cv_accuracy], strict=True))
        best = max(configs, key=accuracy.__getitem__)
        print(f"{self.name}: best {best} ({accuracy[best]:.4f})")
        model = parameters[self.models][configs.index(best)]
        return FamilyResult(family=self.name, cv_accuracy=accuracy, best=best), model


FAMILIES = (
    Family("logistic_regression", LogisticRegression, scaled=True),
    Family("random_forest", RandomForestClassifier),
    Family("gradient_boosting", GradientBoostingClassifier),
)


def load_data(test_size: float = 0.25, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """The breast cancer data set (it ships with scikit-learn), split into training data
    and a held-out test set kept for the final comparison."""
    data = load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=test_size, random_state=seed, stratify=data.target
    )
    print(f"{len(y_train)} training and {len(y_test)} held-out samples")
    return X_train, X_test, y_train, y_test


def check_grids(grids: dict) -> tuple[list[Configuration], ...]:
    """Each family's configurations, in ``FAMILIES`` order; every problem at once."""
    problems = []
    for name in grids:
        if name not in {family.name for family in FAMILIES}:
            problems.append(f"grids.{name}: not a model family{_did_you_mean(name, _names())}")
    for family in FAMILIES:
        problems += _grid_problems(family, grids.get(family.name))
    if problems:
        raise GridError(
            "the parameters file's grids cannot be swept:\n  - "
            + "\n  - ".join(problems)
            + "\nwrite each family as `<hyper-parameter>: [value, ...]` "
            "(see examples/ml_sweep/parameters.yaml)"
        )
    configs = tuple(list(family.configurations(grids[family.name])) for family in FAMILIES)
    for family, names in zip(FAMILIES, configs, strict=True):
        print(f"{family.name}: {len(names)} configurations")
    return configs


def compare(X_test: Any, y_test: Any, cv_folds: int, **parameters: Any) -> tuple[str, float]:
    """Score each family's best model on the held-out set; write the chart and summary.

    The winner has the highest held-out accuracy (ties go to the higher cross-validated
    accuracy). Returns the winner's name and its held-out accuracy.
    """
    results = []
    for family in FAMILIES:
        result = FamilyResult.model_validate(parameters[family.result])
        result.test_accuracy = round(float(parameters[family.best_model].score(X_test, y_test)), 4)
        results.append(result)
    winner = max(results, key=lambda r: (r.test_accuracy, r.cv_accuracy[r.best]))
    write_report(results, winner, REPORT_FOLDER, cv_folds)
    print(f"winner: {winner.label} (held-out accuracy {winner.test_accuracy:.4f})")
    return winner.label, winner.test_accuracy


def _grid_problems(family: Family, grid: Any) -> list[str]:
    where = f"grids.{family.name}"
    if grid is None:
        return [f"{where}: missing; every family needs a grid"]
    if not isinstance(grid, dict) or not grid:
        return [f"{where}: got {grid!r}, expected a mapping of hyper-parameters to lists"]
    known = sorted(family.estimator().get_params())
    problems = []
    for key, values in grid.items():
        if key not in known:
            problems.append(
                f"{where}.{key}: not a hyper-parameter of {family.estimator.__name__}"
                f"{_did_you_mean(key, known)}"
            )
        elif not isinstance(values, list) or not values:
            problems.append(f"{where}.{key}: got {values!r}, expected a non-empty list")
    return problems


def _names() -> list[str]:
    return [family.name for family in FAMILIES]


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(choices)})"
