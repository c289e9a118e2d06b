"""The one exception type for problems the user can fix, printed as one line by the CLI."""


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
