"""Named custom checks written in Python, registered by name and referenced from contracts.

A custom check returns a Narwhals expression that is true for the rows that pass, so it runs
unchanged on pandas and on PySpark, and the failing rows can be counted and sampled like any rule:

    @custom_check("arrival_after_departure")
    def arrival_after_departure(**options) -> nw.Expr:
        return nw.col("arr_time").is_null() | (nw.col("arr_time") >= nw.col("dep_time"))

In a contract: `- {rule: custom, check: arrival_after_departure, columns: [dep_time, arr_time]}`.

Contracts name custom checks, so their modules are imported when the code location loads (an
unknown name fails there). A module of checks therefore imports Narwhals inside each check, as
`custom_checks.py` does, not at its top: loading the definitions must not import the data stack.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import narwhals as nw

CustomCheck = Callable[..., "nw.Expr"]
_REGISTRY: dict[str, CustomCheck] = {}


class UnknownCustomCheckError(KeyError):
    """A contract names a custom check no module has registered."""


def custom_check(name: str) -> Callable[[CustomCheck], CustomCheck]:
    def register(function: CustomCheck) -> CustomCheck:
        if name in _REGISTRY and _REGISTRY[name] is not function:
            raise ValueError(f"custom check {name!r} is already registered by {_REGISTRY[name].__module__}")
        _REGISTRY[name] = function
        return function

    return register


def resolve(name: str) -> CustomCheck:
    # the shipped checks register themselves on import
    import checks.custom_checks  # noqa: F401

    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCustomCheckError(
            f"no custom check named {name!r}; registered: {sorted(_REGISTRY)}"
        ) from None


def registered() -> list[str]:
    import checks.custom_checks  # noqa: F401

    return sorted(_REGISTRY)
