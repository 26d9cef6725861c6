"""Initial parameters from a YAML file, read by a Python function.

examples/common/initial_parameters.yaml sets an int, a float, a string, a list and a
nested mapping. ``read_initial_params`` receives each one by its argument name, cast to
its annotation: ``pydantic_param`` arrives as a ``ComplexParams`` model built from the
mapping. Any parameter can be overridden with an environment variable
``RUNNABLE_PRM_<name>``; the environment wins over the file.

Run it from the repository root:

    python examples/03-parameters/static_parameters_python.py

or, overriding ``stringer``:

    RUNNABLE_PRM_stringer="overridden" python examples/03-parameters/static_parameters_python.py

Outcome: succeeds. ``read params`` and ``success`` are SUCCESS; the run log's parameters
are those of the file (``stringer`` is "hello", or "overridden" with the override).
"""

from runnable_dask import Pipeline, PythonTask


def main():
    from examples.common.functions import read_initial_params

    read_params = PythonTask(name="read params", function=read_initial_params)

    pipeline = Pipeline(steps=[read_params])
    pipeline.execute(parameters_file="examples/common/initial_parameters.yaml")
    return pipeline


if __name__ == "__main__":
    main()
