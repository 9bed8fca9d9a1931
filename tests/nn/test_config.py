"""One check suite for activations, initializers and regularizers: value semantics and lookup."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from aiofit.nn import activations, initializers, regularizers

# (module, kind, a name, the same object built by hand, a different object of that family)
CASES: list[tuple[ModuleType, str, str, Any, Any]] = [
    (activations, "activation", "leaky_relu", activations.LeakyReLU(0.2),
     activations.LeakyReLU(0.1)),
    (initializers, "initializer", "random_normal", initializers.RandomNormal(0.0, 0.05),
     initializers.RandomNormal(0.0, 0.5)),
    (regularizers, "regularizer", "l2", regularizers.L2(0.01), regularizers.L2(0.02)),
]
IDS = [case[1] for case in CASES]
REPRS = {"activation": "LeakyReLU(negative_slope=0.1)",
         "initializer": "RandomNormal(mean=0.0, stddev=0.5)",
         "regularizer": "L2(l2=0.02)"}


@pytest.mark.parametrize(("module", "kind", "name", "same", "other"), CASES, ids=IDS)
def test_objects_are_values_defined_by_class_and_config(
    module: ModuleType, kind: str, name: str, same: Any, other: Any
) -> None:
    built = module.get(name)
    assert built == same
    assert hash(built) == hash(same)
    assert built != other
    assert built != object()
    assert len({built, same, other}) == 2
    assert repr(other) == REPRS[kind]


@pytest.mark.parametrize(("module", "kind", "name", "same", "other"), CASES, ids=IDS)
def test_get_accepts_a_name_a_config_dict_or_an_instance(
    module: ModuleType, kind: str, name: str, same: Any, other: Any
) -> None:
    assert module.get(other) is other
    config = module.serialize(other)  # a {"class_name", "config"} dict: not the defaults
    assert set(config) == {"class_name", "config"}
    assert module.get(config) == other


@pytest.mark.parametrize(("module", "kind", "name", "same", "other"), CASES, ids=IDS)
def test_get_names_the_kind_and_the_bad_value(
    module: ModuleType, kind: str, name: str, same: Any, other: Any
) -> None:
    with pytest.raises(ValueError, match=rf"Unknown {kind}: 'nope'\. Expected one of \[.*"
                                         rf"{name}.*\]\. Received: 'nope'"):
        module.get("nope")
    with pytest.raises(ValueError, match=rf"Unknown {kind}: \['x'\].*Received: \['x'\]"):
        module.get({"class_name": ["x"]})
    with pytest.raises(TypeError, match=rf"Could not interpret {kind} identifier.*"
                                        rf"Received: {kind}=3\.5"):
        module.get(3.5)
