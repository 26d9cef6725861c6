"""A pipeline of one shell command.

A ShellTask runs its command in bash; a non-zero exit would fail the step.

Run it from the repository root:

    python examples/01-tasks/scripts.py

Outcome: succeeds. The step ``shell`` is SUCCESS and its output ("Hello World!" and the
working folder) is in .catalog/<run_id>/logs/shell.execution.log.
"""

from runnable_dask import Pipeline, ShellTask


def main():
    # Any shell command works: a script, a CLI tool, a chain of commands.
    shell_task = ShellTask(name="shell", command="echo 'Hello World!' && pwd")

    pipeline = Pipeline(steps=[shell_task])
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
