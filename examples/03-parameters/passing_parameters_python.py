"""Values returned by one Python function become the arguments of a later one.

``write_parameter`` returns six values; ``returns`` names them in order and says how each
is kept:

- ``json`` (or a bare name): JSON values; a pydantic model is stored as its dict and is
  rebuilt when a later function annotates the argument with the model;
- ``pickled``: any Python object (here an ``ObjectType``), passed between steps as is;
- ``metric``: a JSON value that is also recorded as a metric of the step.

``read_parameter`` receives them by name.

Run it from the repository root:

    python examples/03-parameters/passing_parameters_python.py

Outcome: succeeds. ``write parameters``, ``read parameters`` and ``success`` are SUCCESS;
the run log's parameters hold integer=1, floater=3.14, stringer="hello",
pydantic_param (a dict), obj (kind "object") and score=0.95 (kind "metric").
"""

from runnable_dask import Pipeline, PythonTask, json, metric, pickled


def main():
    from examples.common.functions import read_parameter, write_parameter

    write_parameters = PythonTask(
        name="write parameters",
        function=write_parameter,
        returns=[
            json("integer"),
            json("floater"),
            "stringer",  # a bare name means json("stringer")
            "pydantic_param",
            pickled("obj"),
            metric("score"),
        ],
    )
    read_parameters = PythonTask(name="read parameters", function=read_parameter)

    pipeline = Pipeline(steps=[write_parameters, read_parameters])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
