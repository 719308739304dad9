"""`--compare-with REV` of the benches: a measurement made in a fresh process that imports
the package from the working tree or from REV's files, so that both are measured in one
run, alternating, beside the same ceilings.

Imported by the parent only, inside the functions that need it: a child measuring an
older revision finds that revision's `bench` package first on its path, which may not
have this module.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import multiprocessing
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def in_child(measure: Callable[..., T], *args: Any, variable: str,
             tree: Path | None = None) -> T:
    """`measure(*args)` in a fresh (spawned) process; `tree`: a checkout whose package it
    imports, named to it in the environment variable `variable` (the bench puts that
    tree first on its path when it starts)."""
    context = multiprocessing.get_context("spawn")
    if tree is not None:
        os.environ[variable] = str(tree)  # the spawned child's environment
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            return pool.submit(measure, *args).result()
    finally:
        os.environ.pop(variable, None)


@contextlib.contextmanager
def reference_tree(revision: str, prefix: str) -> Iterator[Path]:
    """The files of `revision` (`git archive`) in a temporary directory, for the children
    that measure it beside the working tree."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", revision],
                             check=True, capture_output=True).stdout
    with tempfile.TemporaryDirectory(prefix=prefix) as directory:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        yield Path(directory)
