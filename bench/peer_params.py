"""How each MedCalc-Bench row's entities become the parameters of the peer package's functions.

The peer (PyPI ``medcalc-bench``, module ``medcalc``) names its parameters in its own way; this
table says, per calculator id, which function to call and how each entity key is renamed. Values
keep the benchmark's shapes ((value, unit) tuples, booleans, strings), which the peer accepts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PeerSpec:
    module: str
    function: str
    keys: Mapping[str, str] = field(default_factory=dict)  # entity key -> peer parameter


PEER: dict[int, PeerSpec] = {
    4: PeerSpec(
        "cha2ds2_vasc_score",
        "generate_cha2ds2_vasc_explanation",
        {
            "age": "age",
            "sex": "sex",
            "Congestive Heart Faliure": "chf",
            "Hypertension history": "hypertension",
            "Diabetes history": "diabetes",
            "Stroke": "stroke",
            "Transient Ischemic Attacks History": "tia",
            "Thromboembolism history": "thromboembolism",
            "Vascular disease history": "vascular_disease",
        },
    ),
    6: PeerSpec(
        "bmi_calculator", "bmi_calculator_explanation", {"weight": "weight", "height": "height"}
    ),
}


def peer_function(calculator_id: int) -> Callable[[dict[str, Any]], Any]:
    spec = PEER[calculator_id]
    module = importlib.import_module(f"medcalc.{spec.module}")
    fn: Callable[[dict[str, Any]], Any] = getattr(module, spec.function)
    return fn


def _shape(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
        return (value[0], value[1])
    return value


def peer_params(calculator_id: int, entities: Mapping[str, Any]) -> dict[str, Any]:
    spec = PEER[calculator_id]
    return {spec.keys[k]: _shape(v) for k, v in entities.items() if k in spec.keys}
