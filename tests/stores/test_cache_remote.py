"""The step cache on fsspec locations other than a local folder: fsspec's in-process
``memory://``, and S3 as served on 127.0.0.1 by moto's server (its ``server`` extra, with
s3fs; the test skips without them), where a team would share one cache.

Each cached step notes in a file of the working folder when it really runs, so a test
tells a step that ran from one whose outputs came from the cache.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import yaml

from runnable_dask import Catalog, Pipeline, PythonTask, metric, pickled
from runnable_dask.stores.cache_store import CacheStore
from runnable_dask.stores.runlog import RunLog


def note(what: str) -> None:
    with open("ran.txt", "a", encoding="utf-8") as handle:
        handle.write(f"{what}\n")


def train(rate: float) -> tuple[list[float], float]:
    note("train")
    Path("report").mkdir(exist_ok=True)
    Path("report/weights.txt").write_text(f"rate={rate}\n", encoding="utf-8")
    return [rate, rate * 2], 0.9


def evaluate(weights: list[float]) -> float:
    note("evaluate")
    return sum(weights)


def pipeline() -> Pipeline:
    return Pipeline(
        steps=[
            PythonTask(
                name="train",
                function=train,
                returns=[pickled("weights"), metric("accuracy")],
                catalog=Catalog(put=["report/weights.txt"]),
                cache=True,
            ),
            PythonTask(name="evaluate", function=evaluate, returns=["total"], cache=True),
        ]
    )


def run_twice(workdir: Path, location: str) -> tuple[RunLog, RunLog]:
    config = workdir / "config.yaml"
    config.write_text(
        yaml.safe_dump({"pipeline-executor": {"type": "local"}, "cache": {"location": location}}),
        encoding="utf-8",
    )
    (workdir / "params.yaml").write_text("rate: 0.5\n", encoding="utf-8")
    runs = []
    for run_id in ("first", "second"):
        runs.append(
            pipeline().execute(
                configuration_file=str(config), run_id=run_id, parameters_file="params.yaml"
            )
        )
        # only the cache can give it back to the second run
        (workdir / "report" / "weights.txt").unlink(missing_ok=True)
    return runs[0], runs[1]


def check_reused(workdir: Path, first: RunLog, second: RunLog, location: str) -> None:
    """What a user checks: the second run ran nothing, and got everything back."""
    assert (workdir / "ran.txt").read_text(encoding="utf-8").split() == ["train", "evaluate"]
    for step in ("train", "evaluate"):
        assert second.step(step).attempts[-1].cached_from == "first"
    assert second.parameters["total"].value == first.parameters["total"].value == 1.5
    assert second.step("train").attempts[-1].user_defined_metrics == {"accuracy": 0.9}
    restored = workdir / ".catalog" / "second" / "report" / "weights.txt"
    assert restored.read_text(encoding="utf-8") == "rate=0.5\n"
    entries = CacheStore(location).entries()
    assert sorted(e.name for e in entries) == ["evaluate", "train"]
    assert {e.run_id for e in entries} == {"first"}
    assert not (workdir / ".catalog" / ".cache").exists()  # it went where it was told


def test_the_cache_on_fsspec_memory(workdir: Path) -> None:
    location = f"memory://runnable-dask-cache-{uuid.uuid4().hex}"
    try:
        first, second = run_twice(workdir, location)
        check_reused(workdir, first, second, location)
        assert CacheStore(location).remove([e.key for e in CacheStore(location).entries()]) > 0
        assert CacheStore(location).entries() == []
    finally:
        fs = fsspec.filesystem("memory")
        if fs.exists(location):
            fs.rm(location, recursive=True)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An S3 API on 127.0.0.1 (moto's server, on a free port) with one bucket; AWS's
    variables point s3fs at it, as a user's would point at their S3."""
    server_module = pytest.importorskip(
        "moto.server", reason="needs moto's server: pip install 'moto[server]' s3fs"
    )
    pytest.importorskip("s3fs", reason="needs s3fs for s3:// URLs: pip install s3fs")
    pytest.importorskip("flask", reason="moto's server needs its extra: 'moto[server]'")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        bucket = f"cache-{uuid.uuid4().hex[:12]}"
        fsspec.filesystem("s3", endpoint_url=endpoint).mkdir(bucket)
        yield bucket
    finally:
        server.stop()


def test_the_cache_on_s3_served_locally(workdir: Path, s3_bucket: str) -> None:
    location = f"s3://{s3_bucket}/team/cache"
    first, second = run_twice(workdir, location)
    check_reused(workdir, first, second, location)
    fs = fsspec.filesystem("s3")
    stored = fs.find(f"{s3_bucket}/team/cache")
    assert sum("/entries/" in path for path in stored) == 2
    assert any("/blobs/" in path for path in stored)
