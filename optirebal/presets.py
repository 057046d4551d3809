"""Named policies of the rebalancing literature, as plain :class:`~optirebal.policy.Policy`
values (every field stays open to :func:`dataclasses.replace`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optirebal.policy import Band, Policy, Schedule


def opportunistic(targets: Mapping[str, float], *, looks: str = "2W-FRI",
                  trigger: float = 0.20, destination: float = 0.10, **fields: Any) -> Policy:
    """Opportunistic rebalancing: frequent looks, a wide trigger, a narrower destination.

    Looks every two weeks (``looks``, a :class:`Schedule` value); trades only when a class has
    drifted by more than ``trigger`` of its target (relative, 20%) and then only back to
    ``destination`` of its target (relative, 10%, ``mode = "to_band"``): it catches large
    moves when they happen instead of waiting for the calendar. In TOML::

        [policy]
        mode = "to_band"
        trigger = { width = 0.2, kind = "relative" }
        band = { width = 0.1, kind = "relative" }
        [policy.schedule]
        looks = "2W-FRI"

    ``fields`` sets any other :class:`Policy` field (costs, tax, ...).
    """
    return Policy(targets=dict(targets), schedule=Schedule(looks=looks), mode="to_band",
                  trigger=Band.relative(trigger), band=Band.relative(destination), **fields)
