"""Values exported by a shell command reach a Python function, and back again.

A ShellTask returns the variables its command ``export``s, by name; a value that parses
as JSON (``41``, ``[1, 2, 3]``) is kept as that JSON value, anything else as a string.
A Python function receives them as arguments and returns a new value, which a later
shell command reads as an environment variable.

Run it from the repository root:

    python examples/03-parameters/passing_parameters_shell.py

Outcome: succeeds. ``write in shell``, ``read in python``, ``read in shell`` and
``success`` are SUCCESS; the run log's parameters hold shell_integer=41,
shell_string="from the shell", shell_list=[1, 2, 3], next_integer=42 and
shell_score=0.5 (a metric).
"""

from runnable_dask import Pipeline, PythonTask, ShellTask, json, metric

EXPORT_IN_SHELL = """
export shell_integer=41
export shell_string="from the shell"
export shell_list="[1, 2, 3]"
export shell_score=0.5
"""

# A non-zero exit fails the step, so the test below is a real check.
READ_IN_SHELL = """
echo "next_integer=$next_integer shell_string=$shell_string"
test "$next_integer" = "42"
test "$shell_string" = "from the shell"
"""


def main():
    from examples.common.functions import read_shell_exports

    write_in_shell = ShellTask(
        name="write in shell",
        command=EXPORT_IN_SHELL,
        returns=[json("shell_integer"), "shell_string", "shell_list", metric("shell_score")],
    )
    read_in_python = PythonTask(
        name="read in python", function=read_shell_exports, returns=["next_integer"]
    )
    read_in_shell = ShellTask(name="read in shell", command=READ_IN_SHELL)

    pipeline = Pipeline(steps=[write_in_shell, read_in_python, read_in_shell])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
