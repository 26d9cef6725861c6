"""Stubs: placeholders for steps not written yet.

A Stub does nothing and succeeds. It accepts any keyword, so a task can be turned into
a stub (or back) by changing only its class while the pipeline is being drafted.

Run it from the repository root:

    python examples/01-tasks/stub.py

Outcome: succeeds. The steps ``step 1``, ``step 2`` and ``step 3`` are all SUCCESS.
"""

from runnable_dask import Pipeline, Stub


def main():
    step1 = Stub(name="step 1")
    # Extra keywords are accepted and ignored: this was (or will be) a PythonTask.
    step2 = Stub(name="step 2", function="train_model", returns=["model"])
    step3 = Stub(name="step 3", what="a stub can also end the pipeline")

    pipeline = Pipeline(steps=[step1, step2, step3])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
