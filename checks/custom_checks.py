"""The custom checks the shipped contracts use; each returns an expression true for passing rows.

Narwhals is imported inside each check: this module is imported when the code location loads, to
know the checks' names, and the expressions are only built when a step validates a frame.
"""

from typing import TYPE_CHECKING

from checks.custom import custom_check

if TYPE_CHECKING:
    import narwhals as nw


@custom_check("all_or_none")
def all_or_none(columns: list[str]) -> "nw.Expr":
    """The columns are all set or all empty, e.g. a cancelled flight has neither time nor delay."""
    import narwhals as nw

    present = [nw.col(name).is_null() for name in columns]
    all_null, any_null = present[0], present[0]
    for expression in present[1:]:
        all_null = all_null & expression
        any_null = any_null | expression
    return all_null | ~any_null


@custom_check("implies_present")
def implies_present(when: str, then: list[str]) -> "nw.Expr":
    """Where `when` is set, every column in `then` is set too (an arrival has a delay)."""
    import narwhals as nw

    missing = nw.col(then[0]).is_null()
    for name in then[1:]:
        missing = missing | nw.col(name).is_null()
    return nw.col(when).is_null() | ~missing


@custom_check("not_before")
def not_before(column: str, other: str) -> "nw.Expr":
    """`column` is not earlier than `other` where both are set (a date range that does not run backwards)."""
    import narwhals as nw

    return nw.col(column).is_null() | nw.col(other).is_null() | (nw.col(column) >= nw.col(other))
