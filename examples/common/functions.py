"""Functions the example pipelines run as PythonTasks.

They are ordinary Python: no runnable_dask import is needed to write a task. Arguments are
bound by name from the pipeline's parameters; what a function returns becomes parameters
for later steps (as named by the task's ``returns``).
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from pydantic import BaseModel

DATA_FOLDER = Path("data")


class EggsModel(BaseModel):
    """A nested part of the initial parameters."""

    ham: str


class ComplexParams(BaseModel):
    """A pydantic model built by the task from the ``pydantic_param`` dict parameter."""

    x: int
    foo: str
    eggs: EggsModel


class ObjectType:
    """An object that is not JSON-serialisable: it travels only as ``pickled``."""

    def __init__(self, salute: str = "hello") -> None:
        self.salute = salute

    def __repr__(self) -> str:
        return f"ObjectType(salute={self.salute!r})"


def hello() -> None:
    """Say hello: the simplest task there is."""
    print("Hello World!")


def raise_ex() -> None:
    """Always fail, to show how a pipeline handles a failing step."""
    raise RuntimeError("This step is meant to fail")


def read_initial_params(
    integer: int,
    floater: float,
    stringer: str,
    pydantic_param: ComplexParams,
    chunks: list[int],
) -> None:
    """Check the parameters from examples/common/initial_parameters.yaml, with their types.

    ``stringer`` may be overridden from the environment (RUNNABLE_PRM_stringer); every other
    value must be exactly what the file says.
    """
    print(f"integer={integer!r} floater={floater!r} stringer={stringer!r}")
    print(f"pydantic_param={pydantic_param!r} chunks={chunks!r}")
    assert integer == 1 and isinstance(integer, int)
    assert floater == 3.14 and isinstance(floater, float)
    assert isinstance(stringer, str) and stringer
    assert isinstance(pydantic_param, ComplexParams)
    assert pydantic_param.x == 10 and pydantic_param.foo == "bar"
    assert pydantic_param.eggs.ham == "Yes, please!!"
    assert chunks == [1, 2, 3]


def write_parameter() -> tuple[int, float, str, ComplexParams, ObjectType, float]:
    """Return one value of each kind: json (int, float, str, model), pickled and metric."""
    model = ComplexParams(x=10, foo="bar", eggs=EggsModel(ham="Yes, please!!"))
    return 1, 3.14, "hello", model, ObjectType(), 0.95


def read_parameter(
    integer: int,
    floater: float,
    stringer: str,
    pydantic_param: ComplexParams,
    obj: ObjectType,
    score: float,
) -> None:
    """Read back what ``write_parameter`` returned, each with its original type."""
    print(f"integer={integer} floater={floater} stringer={stringer}")
    print(f"pydantic_param={pydantic_param!r} obj={obj!r} score={score}")
    assert integer == 1
    assert floater == 3.14
    assert stringer == "hello"
    assert isinstance(pydantic_param, ComplexParams)
    assert pydantic_param.eggs.ham == "Yes, please!!"
    assert isinstance(obj, ObjectType) and obj.salute == "hello"
    assert score == 0.95


def read_shell_exports(shell_integer: int, shell_string: str, shell_list: list[int]) -> int:
    """Read what a shell step exported; return a new value for a later shell step."""
    print(f"shell_integer={shell_integer} shell_string={shell_string} shell_list={shell_list}")
    assert shell_integer == 41
    assert shell_string == "from the shell"
    assert shell_list == [1, 2, 3]
    return shell_integer + 1


def read_notebook_returns(nb_integer: int, nb_string: str, nb_dict: dict) -> None:
    """Read the values a notebook set and returned."""
    print(f"nb_integer={nb_integer} nb_string={nb_string} nb_dict={nb_dict}")
    assert nb_integer == 2
    assert nb_string == "hello from the notebook"
    assert nb_dict == {"ham": "Yes, please!!", "x": 11}


def write_files() -> None:
    """Write a CSV and a text file under data/ for the catalog to keep."""
    DATA_FOLDER.mkdir(exist_ok=True)
    (DATA_FOLDER / "data.csv").write_text("id,value\n1,10\n2,20\n", encoding="utf-8")
    (DATA_FOLDER / "hello.txt").write_text("Hello from python\n", encoding="utf-8")


def read_files() -> None:
    """Read back the files got from the catalog, including the one a shell step wrote."""
    assert (DATA_FOLDER / "data.csv").read_text(encoding="utf-8").startswith("id,value")
    assert (DATA_FOLDER / "hello.txt").read_text(encoding="utf-8") == "Hello from python\n"
    shell_text = (DATA_FOLDER / "shell.txt").read_text(encoding="utf-8")
    assert shell_text.strip() == "Hello from shell", shell_text
    notebook_text = (DATA_FOLDER / "notebook.txt").read_text(encoding="utf-8")
    assert notebook_text.strip() == "Hello from notebook", notebook_text
    print("read", sorted(os.listdir(DATA_FOLDER)))


# Dynamic pipelines: Map, Conditional, Loop, retries, mocking ---------------------------
#
# A tiny forecasting problem, in plain Python: SERIES is a time series; the first
# HISTORY values are only history, the last ones are the targets a model forecasts.

SERIES = [2.0, 4.0, 3.0, 5.0, 9.0, 7.0, 8.0, 9.0, 11.0]
HISTORY = 4


def evaluate_window(window: int) -> float:
    """Score a moving-average forecaster: its mean absolute error over the targets.

    Each target is forecast as the mean of the ``window`` values just before it. A window
    longer than the history (more than 4) cannot forecast the first target: ValueError.
    Windows 1, 2 and 3 score 2.0, 1.8 and 2.267.
    """
    if not 1 <= window <= HISTORY:
        raise ValueError(f"window {window} does not fit: use 1 to {HISTORY} past values")
    errors = [
        abs(SERIES[i] - sum(SERIES[i - window : i]) / window) for i in range(HISTORY, len(SERIES))
    ]
    mae = round(sum(errors) / len(errors), 3)
    print(f"window={window} mae={mae}")
    return mae


def pick_best_window(windows: list[int], mae: list[float]) -> int:
    """The window with the lowest error; ``mae`` is the Map's list, in ``windows`` order."""
    print(f"windows={windows} mae={mae}")
    assert len(windows) == len(mae), (windows, mae)
    best = windows[mae.index(min(mae))]
    print(f"best window: {best}")
    return best


def average(*values: float) -> float:
    """A Map reducer: the mean of what the iterations returned, to 3 decimals."""
    return round(sum(values) / len(values), 3)


def report_errors(worst_mae: float, mean_mae: float) -> None:
    """Print the reduced errors of a sweep."""
    print(f"worst_mae={worst_mae} mean_mae={mean_mae}")


def list_models() -> list[str]:
    """The candidate models, decided at run time: the list a later Map iterates on."""
    return ["mean", "median", "last"]


def fit_model(model: str) -> float:
    """'Train' a constant forecaster on the first 6 values; return its forecast.

    mean -> 5.0, median -> 4.5, last -> 7.0.
    """
    train = SERIES[:6]
    fitted = {"mean": statistics.fmean, "median": statistics.median, "last": lambda v: v[-1]}
    forecast = float(fitted[model](train))
    print(f"model={model} forecast={forecast}")
    return forecast


def score_model(model: str, forecast: float) -> float:
    """Mean absolute error of ``forecast`` on the last 3 values (mean 4.333, median 4.833,
    last 2.333)."""
    test = SERIES[6:]
    error = round(sum(abs(value - forecast) for value in test) / len(test), 3)
    print(f"model={model} error={error}")
    return error


def choose_model(models: list[str], error: list[float]) -> str:
    """The model with the lowest error; ``error`` is the Map's list, in ``models`` order."""
    chosen = models[error.index(min(error))]
    print(f"models={models} error={error} chosen={chosen}")
    return chosen


def choose_route(rows: int = 9) -> str:
    """Pick how to train from the size of the data: "small" (up to 1000 rows) or "large".

    ``rows`` defaults to 9 (the tiny series); no rows at all gives "empty", which no
    branch of examples/02-sequential/conditional.py handles.
    """
    route = "empty" if rows <= 0 else "small" if rows <= 1000 else "large"
    print(f"rows={rows} route={route}")
    return route


def fit_in_memory() -> str:
    """Train on all the rows at once (small data)."""
    print("fitting on all rows in memory")
    return "in-memory"


def fit_in_batches() -> str:
    """Train on mini-batches (large data)."""
    print("fitting on mini-batches")
    return "mini-batch"


def report_method(route: str, method: str) -> None:
    """Print which branch trained the model."""
    print(f"route={route} method={method}")
    assert (route, method) in {("small", "in-memory"), ("large", "mini-batch")}


def train_epoch(loss: float, target: float) -> tuple[float, bool, int]:
    """One epoch of a pretend training run: the loss halves.

    The loop index (0, 1, ...) comes from the environment variable ``epoch``, set by the
    Loop's ``index_as="epoch"``. Returns the new loss, whether it is below ``target``, and
    how many epochs have run.
    """
    epoch = int(os.environ["epoch"])  # noqa: SIM112 (the name Loop.index_as gives)
    loss = loss / 2
    converged = loss < target
    print(f"epoch {epoch}: loss={loss} converged={converged}")
    return loss, converged, epoch + 1


def report_training(loss: float, converged: bool, epochs_run: int) -> None:
    """Print how the training loop ended."""
    print(f"after {epochs_run} epochs: loss={loss} converged={converged}")


def flaky_download(failures: int = 2) -> int:
    """Fail the first ``failures`` attempts of this run, then succeed; return the attempt.

    It stands in for a call to a server that is briefly unavailable. Attempts are counted
    in a file in the temporary folder, named after the run (``RUNNABLE_RUN_ID``), so every
    run starts again from attempt 1; the file is removed when the attempt succeeds.
    """
    run_id = os.environ.get("RUNNABLE_RUN_ID", "unknown-run")
    counter = Path(tempfile.gettempdir()) / f"runnable-dask-flaky-{run_id}.count"
    attempt = int(counter.read_text(encoding="utf-8")) + 1 if counter.exists() else 1
    if attempt <= failures:
        counter.write_text(str(attempt), encoding="utf-8")
        raise ConnectionError(f"attempt {attempt}: the data server did not answer (simulated)")
    counter.unlink(missing_ok=True)
    print(f"attempt {attempt}: downloaded {len(SERIES)} values")
    return attempt


def count_rows() -> int:
    """Prepare the data: how many values the series has (9)."""
    print(f"{len(SERIES)} rows")
    return len(SERIES)


def train_until_fixed(rows: int) -> float:
    """Train, but only once the 'bug' is fixed: the environment has TRAINING_FIXED=1.

    Without it the step fails, as a real bug would; with it, the step returns an
    accuracy of 0.9.
    """
    if os.environ.get("TRAINING_FIXED") != "1":
        raise RuntimeError(
            f"training on {rows} rows diverged (simulated bug); "
            "set TRAINING_FIXED=1 and retry the run"
        )
    print(f"trained on {rows} rows")
    return 0.9


def report_accuracy(rows: int, accuracy: float) -> None:
    """Print the result of the resumed run."""
    print(f"rows={rows} accuracy={accuracy}")


def write_series() -> None:
    """Write the series to data/series.csv, as a download would."""
    DATA_FOLDER.mkdir(exist_ok=True)
    lines = ["t,value", *(f"{t},{value}" for t, value in enumerate(SERIES))]
    (DATA_FOLDER / "series.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def train_forecaster() -> float:
    """Fit the 'last value' forecaster on data/series.csv (written by the download step)."""
    rows = (DATA_FOLDER / "series.csv").read_text(encoding="utf-8").split()[1:]
    values = [float(row.split(",")[1]) for row in rows]
    forecast = values[5]  # the last of the first 6 values, as fit_model("last")
    print(f"read {len(values)} values; forecast={forecast}")
    return forecast


def fake_forecaster() -> float:
    """A stand-in for ``train_forecaster`` in mocked runs: no data needed, forecast 7.0."""
    print("fake forecaster: forecast=7.0")
    return 7.0


def evaluate_forecast(forecast: float) -> float:
    """Mean absolute error of ``forecast`` on the last 3 values of the series."""
    return score_model("forecast", forecast)


def list_files(count: int = 1000) -> list[str]:
    """Names of the files a per-file map works through."""
    return [f"part-{i:04d}.csv" for i in range(count)]


def count_lines(file: str) -> int:
    """A short task per item (here: the number in the file's name, as its line count)."""
    return int(file[5:9]) % 7
