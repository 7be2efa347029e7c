"""The custom checks the shipped contracts use (`checks.custom_checks:implies_present`, ...); each
returns an expression true for passing rows. A step imports this module when it validates a frame.
"""

import narwhals as nw


def all_or_none(columns: list[str]) -> nw.Expr:
    """The columns are all set or all empty, e.g. a cancelled flight has neither time nor delay."""
    present = [nw.col(name).is_null() for name in columns]
    all_null, any_null = present[0], present[0]
    for expression in present[1:]:
        all_null = all_null & expression
        any_null = any_null | expression
    return all_null | ~any_null


def implies_present(when: str, then: list[str]) -> nw.Expr:
    """Where `when` is set, every column in `then` is set too (an arrival has a delay)."""
    missing = nw.col(then[0]).is_null()
    for name in then[1:]:
        missing = missing | nw.col(name).is_null()
    return nw.col(when).is_null() | ~missing


def not_before(column: str, other: str) -> nw.Expr:
    """`column` is not earlier than `other` where both are set (a date range that does not run backwards)."""
    return nw.col(column).is_null() | nw.col(other).is_null() | (nw.col(column) >= nw.col(other))
