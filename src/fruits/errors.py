"""The one exception type for problems the user can fix, and the commands' exit codes.

Every command of the project (``kedro run``, ``fruits-predict``, ``fruits-serve``,
``fruits-emr``) prints such a problem as one line on stderr and exits with
``INPUT_ERROR_EXIT_CODE``; Ctrl-C ends it with one line and ``INTERRUPTED_EXIT_CODE``.
"""

# A run refused for a bad input or setting (1 stays "the job failed").
INPUT_ERROR_EXIT_CODE = 2
# After Ctrl-C, as shells report a process ended by SIGINT (128 + 2).
INTERRUPTED_EXIT_CODE = 130


class FruitsInputError(ValueError):
    """A bad input or setting: the message names it and says what to do.

    ``kedro run`` (through ``fruits.cli``) prints such an error as a single line on
    stderr and exits with status 2, whatever wraps it on the way up.
    """


def find_input_error(error: BaseException | None) -> FruitsInputError | None:
    """The ``FruitsInputError`` behind ``error`` (itself, or a cause or context), if any."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, FruitsInputError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
