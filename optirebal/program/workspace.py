"""What a :class:`~optirebal.rebalance.Rebalancer` keeps per shape between calls.

The program itself is assembled afresh on every call, in time linear in its size
(:mod:`optirebal.program.conic`); a workspace keeps what a call learns that the next call of the
same shape can start from: the wash-sale direction of each substantially-identical group with
taxable loss lots that the last call traded (bought, or sold at a loss), and of each group whose
same-solve conflict it settled. Fixing them before the first solve means a warm call solves once
unless a new conflict appears (a group the last call did not trade). The last answer stays
feasible under those directions, so an unchanged portfolio keeps its optimum; where the optimum
is not unique, the trades may differ from a fresh call's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optirebal.decode import group_flows
from optirebal.events import Event
from optirebal.program.data import ProblemData
from optirebal.program.fixes import block_groups, loss_groups
from optirebal.program.solve import TOLERANCE, Solution


@dataclass(eq=False)
class Workspace:
    """Per shape: the wash-sale directions of the last call (group name -> side)."""

    directions: dict[str, str] = field(default_factory=dict)  # "bought" or "sold at a loss"

    def forget(self) -> None:
        """Drop the directions learned (the next call starts as a fresh one)."""
        self.directions = {}

    def known_directions(self, data: ProblemData, events: list[Event]) -> ProblemData:
        """``data`` with the directions of the last call fixed: no buys of a group it sold at a
        loss, no loss sales of a group it bought. Groups without taxable loss lots now, or not
        in the portfolio, are left alone."""
        if not self.directions:
            return data
        has_loss = loss_groups(data, sellable=True)
        side = np.array([self.directions.get(str(name), "") for name in data.group_codes[1]])
        no_buy = has_loss & (side == "sold at a loss")
        no_loss_sale = has_loss & (side == "bought")
        if not no_buy.any() and not no_loss_sale.any():
            return data
        events.append(Event("wash_known_direction", f"wash-sale directions of the last call "
                            f"kept: {int(no_buy.sum())} groups not bought, "
                            f"{int(no_loss_sale.sum())} groups without loss sales",
                            value=float(no_buy.sum() + no_loss_sale.sum())))
        return block_groups(data, no_buy, no_loss_sale,
                            "wash sale: group {} sold at a loss on the last call",
                            "wash sale: group {} bought on the last call")

    def learn_directions(self, data: ProblemData, solution: Solution,
                         conflicts: dict[str, str]) -> None:
        """Remember the side each group with taxable loss lots took in ``solution`` and the sides
        of this call's conflicts; earlier directions lapse, so none outlives its reason."""
        zero = TOLERANCE[solution.solver]
        bought, lost = group_flows(data, solution.buys, solution.sells)
        names = data.group_codes[1]
        has_loss = loss_groups(data, sellable=False)
        traded = {str(names[g]): "sold at a loss" for g in np.flatnonzero(lost > zero)}
        traded.update({str(names[g]): "bought"
                       for g in np.flatnonzero(has_loss & (bought > zero) & (lost <= zero))})
        self.directions = {**traded, **conflicts}
