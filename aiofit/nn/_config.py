"""What activations, initializers and regularizers share.

Each is a small value object defined by its class and ``get_config()``, named
in layer configs by a Keras identifier: a name, a ``{"class_name", "config"}``
dict or an instance. :class:`Configured` gives the value semantics and
:func:`from_identifier` the lookup, so the three modules keep one copy of each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["Configured", "from_identifier", "lookup"]

T = TypeVar("T")


class Configured:
    """Mixin: equal (and hashing alike) when of the same class with the same config."""

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments, JSON-serialisable."""
        return {}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def lookup(kind: str, registry: Mapping[str, type[T]], name: Any,
           expected: Iterable[str]) -> type[T]:
    """``registry[name]``, or a ValueError listing the ``expected`` names."""
    if not isinstance(name, str) or name not in registry:
        raise ValueError(
            f"Unknown {kind}: {name!r}. Expected one of [{', '.join(sorted(expected))}]. "
            f"Received: {name!r}"
        )
    return registry[name]


def from_identifier(identifier: Any, kind: str, base: type[T],
                    find: Callable[[Any], type[T]], accepted: str) -> T:
    """The ``base`` instance for a name, a ``{"class_name", "config"}`` dict or an instance.

    Args:
        identifier: what the user passed.
        kind: how messages name it (``"activation"``).
        base: the base class; an instance of it is returned as it is.
        find: the class for a name (raises ValueError for an unknown one).
        accepted: what the TypeError says is accepted besides an instance.

    Raises:
        ValueError: for an unknown name.
        TypeError: for anything else.
    """
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, dict):
        return find(identifier.get("class_name"))(**identifier.get("config", {}))
    if isinstance(identifier, str):
        return find(identifier)()
    raise TypeError(
        f"Could not interpret {kind} identifier: expected {accepted} or an "
        f"{base.__module__}.{base.__name__}. Received: {kind}={identifier!r}"
    )
