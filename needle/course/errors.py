"""The outcomes of a check other than a pass; their class names are what the headless runner reads from a notebook.
And how a compiled cell's compiler errors reach the learner (`%%needle_cpp`, `%%needle_cuda`)."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator


class CheckFailed(AssertionError):
    """The learner's code ran but gave a wrong result (the message holds expected vs got and the input)."""


class LearnerError(CheckFailed):
    """The learner's code raised an exception; the message holds its traceback."""


class NotImplementedYet(NotImplementedError):
    """The exercise still holds its stub (or its cell has not been run)."""


STATUS_BY_ERROR = {
    "CheckFailed": "failed",
    "LearnerError": "failed",
    "NotImplementedYet": "not attempted",
}


@contextlib.contextmanager
def compiler_errors_shown(exercise_ids: list[str], error: type[Exception]) -> Iterator[None]:
    """A compile `error` of a cell: the compiler's messages go to stderr, and the error raised again names the cell's
    exercises as not installed (without a traceback into needle)."""
    try:
        yield
    except error as err:
        print(err, file=sys.stderr)
        raise error(f"{', '.join(exercise_ids)}: not installed (see the compiler's errors above)") from None
