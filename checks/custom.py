"""Custom checks: Python functions a contract names `package.module:function`, as models name theirs.

A custom check returns a Narwhals expression that is true for the rows that pass, so it runs
unchanged on pandas and on PySpark, and the failing rows can be counted and sampled like any rule:

    # my_checks/flights.py
    import narwhals as nw

    def arrival_after_departure() -> nw.Expr:
        return nw.col("arr_time").is_null() | (nw.col("arr_time") >= nw.col("dep_time"))

In a contract:
`- {rule: custom, check: my_checks.flights:arrival_after_departure, columns: [dep_time, arr_time]}`.

When the code location loads, the reference is checked without running the module (only its
parent packages are imported, as finding it needs): it must be found on the path and define the
function at its top level, so a typo fails there, and the module may import the data stack at its
top. It is imported when a step validates a frame.
"""

import ast
import functools
import importlib
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import narwhals as nw

CustomCheck = Callable[..., "nw.Expr"]
EXAMPLE = "checks.custom_checks:implies_present"
_REFERENCE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


class UnknownCustomCheckError(ValueError):
    """A contract names a custom check that no module defines (a ValueError, so a contract's
    validation reports it under the rule's `check` field)."""


def check_reference(reference: str) -> str:
    """`reference` itself when it names a function a module defines; raises otherwise."""
    if not _REFERENCE.fullmatch(reference):
        raise UnknownCustomCheckError(f"expected `package.module:function`, such as `{EXAMPLE}`")
    module_name, _, function_name = reference.partition(":")
    names = _top_level_names(module_name)
    if names is not None and function_name not in names.bound:
        raise UnknownCustomCheckError(
            f"module {module_name!r} defines no function {function_name!r}; "
            f"its functions: {sorted(name for name in names.functions if not name.startswith('_'))}"
        )
    return reference


class _Names(NamedTuple):
    bound: set[str]  # everything a check could be: functions, imported or assigned names
    functions: set[str]  # what the module itself defines, for the error message


def _top_level_names(module_name: str) -> _Names | None:
    """The names a module binds, read from its source without running it (None when it has no
    source to read, such as a compiled extension: then only the step can tell)."""
    module = sys.modules.get(module_name)
    if module is not None:
        functions = {name for name, value in vars(module).items() if inspect.isfunction(value)}
        return _Names(set(vars(module)), functions)
    try:
        spec = importlib.util.find_spec(module_name)
    except ImportError:  # a parent package that does not exist
        spec = None
    if spec is None:
        raise UnknownCustomCheckError(f"no module named {module_name!r} (expected `package.module:function`)")
    get_source = getattr(spec.loader, "get_source", None)
    source = get_source(module_name) if get_source else None
    if source is None:
        return None
    names = _Names(set(), set())
    # top-level statements, and those under a top-level `if` or `try` (optional definitions)
    statements = list(ast.parse(source).body)
    while statements:
        node = statements.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.functions.add(node.name)
            names.bound.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.bound.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Assign):
            names.bound.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.If | ast.Try):
            statements += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            statements += [item for handler in getattr(node, "handlers", []) for item in handler.body]
    return names


@functools.cache
def resolve(reference: str) -> CustomCheck:
    """The check function itself, imported (with whatever its module imports) in the step."""
    module_name, _, function_name = check_reference(reference).partition(":")
    function = getattr(importlib.import_module(module_name), function_name, None)
    if not callable(function):
        raise UnknownCustomCheckError(f"{reference}: {module_name!r} defines no function {function_name!r}")
    return function
