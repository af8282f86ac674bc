"""The single exception type raised by the query-option parser."""

from __future__ import annotations

from collections.abc import Sequence


class QuerySyntaxError(ValueError):
    """A query option could not be parsed or validated.

    ``option`` names the offending query option (e.g. ``'$filter'``), ``position`` is the
    1-based character position inside that option's value (or ``None``), ``expected`` lists
    human-readable descriptions of what would have been accepted there.  ``detail`` is the
    message without the option prefix; ``str(exc)`` is the full message.
    """

    option: str | None
    position: int | None
    expected: list[str]
    detail: str

    def __init__(
        self,
        detail: str,
        *,
        option: str | None = None,
        position: int | None = None,
        expected: Sequence[str] = (),
    ) -> None:
        self.option = option
        self.position = position
        self.expected = list(expected)
        self.detail = detail
        super().__init__(f"{option}: {detail}" if option else detail)

    def __reduce__(self) -> tuple[object, ...]:
        # keyword-only arguments are not pickled by BaseException's default reduce
        return (_rebuild, (self.detail, self.option, self.position, self.expected))


def _rebuild(
    detail: str, option: str | None, position: int | None, expected: list[str]
) -> QuerySyntaxError:
    return QuerySyntaxError(detail, option=option, position=position, expected=expected)
