"""benchopt's results file, written under a name no other run holds.

benchopt writes a run's parquet file once the run is over
(``benchopt.runner`` calls ``benchopt.results.save_results``): it takes
``--output``, or ``<name>_1``, ``<name>_2``, ... when that file exists, but
checks the name and writes the file as two separate steps. Two runs with the
same ``--output`` that end together both find the name free and both write
it: the file holds only one of them, and both print the same "Saving result
in" line.

:func:`keep_results_apart` (called when ``objective.py`` is imported, which
benchopt does at the start of a run) replaces the function the runner calls
with :func:`save_results`: the results are written to a temporary file
beside the target, which is then hard-linked to the first free name of
``<name>``, ``<name>_1``, ... (creating a link fails if the name exists, so
two runs cannot take the same one) and never replaces an existing file.
When the name given was taken, a line says which name holds this run's
results instead.
"""
import itertools
import os
import tempfile
import warnings
from pathlib import Path

SUFFIXES = (".parquet", ".csv")


def _candidates(path):
    yield path
    for i in itertools.count(1):
        yield path.with_name(f"{path.stem}_{i}{path.suffix}")


def _claim(tmp, path):
    """Give the complete file ``tmp`` the first free name of ``path``,
    ``<stem>_1``, ...; returns that name. Never replaces a file."""
    for candidate in _candidates(path):
        try:
            os.link(tmp, candidate)
        except FileExistsError:
            continue
        except OSError:
            # no hard links on this file system: reserve the name with an
            # exclusive create, then move the complete file onto it
            try:
                fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644)
            except FileExistsError:
                continue
            os.close(fd)
            os.replace(tmp, candidate)
            return candidate
        Path(tmp).unlink()
        return candidate


def write_exclusive(path, write):
    """Call ``write(tmp_path)``, then give the file the first free name of
    ``path`` (:func:`_claim`); returns that name. Nothing is left behind on
    failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                               suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        return _claim(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_results(df, path, uniquify=True):
    """benchopt's ``save_results`` (same arguments, same file formats),
    writing under a name no other run holds (module docstring)."""
    import pandas as pd
    from benchopt import results
    from benchopt.utils.terminal_output import TerminalOutput

    if not uniquify:  # an explicit overwrite: benchopt's own behaviour
        return results.save_results(df, path, uniquify=False)
    if "run_date" not in df.columns:
        df["run_date"] = pd.Timestamp.now().isoformat()
    path = Path(path)
    if path.suffix not in SUFFIXES:
        if path.suffix:
            warnings.warn(f"Unsupported file format: {path.suffix}. Only "
                          ".parquet and .csv files are supported. Defaulting "
                          "to parquet.")
        path = path.with_suffix(".parquet")

    def write(tmp):
        if path.suffix == ".parquet":
            results.to_parquet(df, tmp)
        else:
            df.to_csv(tmp, index=False)

    saved = write_exclusive(path, write)
    if saved != path:
        print(f"'{path}' already exists (the results of another run, "
              f"possibly still running with the same --output): this run's "
              f"results go to '{saved}' instead.", flush=True)
    TerminalOutput().savefile_status(saved)
    return saved


def keep_results_apart():
    """Make benchopt's runner save its results with :func:`save_results`
    (idempotent: benchopt may import ``objective.py`` more than once)."""
    from benchopt import runner
    current = getattr(runner, "save_results", None)
    if current is None:  # another benchopt layout: leave it as it is
        warnings.warn("benchopt.runner has no save_results: two runs with "
                      "the same --output may write one file.")
    elif not getattr(current, "keeps_results_apart", False):
        save_results.keeps_results_apart = True
        runner.save_results = save_results
