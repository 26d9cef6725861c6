"""Files passed between steps through the run's catalog.

Each task says which files it takes from the catalog before it runs (``get``) and which
it stores there after it runs (``put``); the run's catalog is .catalog/<run_id>/.

1. ``generate data`` (python) writes data/data.csv and data/hello.txt and puts both.
2. ``delete local data`` (shell) removes the data/ folder, so every later step must get
   its files from the catalog.
3. ``write in shell`` gets data/hello.txt, puts data/shell.txt and also writes
   data/large.txt without putting it.
4. ``record large file`` puts data/large.txt with ``store_copy=False``: its name and hash
   are kept in the run log, the file itself is not copied into the catalog.
5. ``write in notebook`` gets data/hello.txt and puts data/notebook.txt.
6. ``read everything`` (python) gets ``data/*`` and checks every file.

Run it from the repository root (it writes into ./data/):

    python examples/04-catalog/catalog.py

Outcome: succeeds; every step is SUCCESS. .catalog/<run_id>/data/ holds data.csv,
hello.txt, shell.txt and notebook.txt, but not large.txt.
"""

from runnable_dask import Catalog, NotebookTask, Pipeline, PythonTask, ShellTask

WRITE_IN_SHELL = """
cat data/hello.txt
echo 'Hello from shell' > data/shell.txt
seq 1 1000 > data/large.txt
"""


def main():
    from examples.common.functions import read_files, write_files

    generate_data = PythonTask(
        name="generate data",
        function=write_files,
        catalog=Catalog(put=["data/data.csv", "data/hello.txt"]),
    )
    delete_local_data = ShellTask(name="delete local data", command="rm -rf data")
    write_in_shell = ShellTask(
        name="write in shell",
        command=WRITE_IN_SHELL,
        catalog=Catalog(get=["data/hello.txt"], put=["data/shell.txt"]),
    )
    record_large_file = ShellTask(
        name="record large file",
        command="test -f data/large.txt",
        catalog=Catalog(put=["data/large.txt"], store_copy=False),
    )
    write_in_notebook = NotebookTask(
        name="write in notebook",
        notebook="examples/common/catalog_nb.ipynb",
        catalog=Catalog(get=["data/hello.txt"], put=["data/notebook.txt"]),
    )
    read_everything = PythonTask(
        name="read everything", function=read_files, catalog=Catalog(get=["data/*"])
    )

    pipeline = Pipeline(
        steps=[
            generate_data,
            delete_local_data,
            write_in_shell,
            record_large_file,
            write_in_notebook,
            read_everything,
        ]
    )
    pipeline.execute()
    return pipeline


if __name__ == "__main__":
    main()
