"""What a :class:`~optirebal.rebalance.Rebalancer` keeps per shape between calls.

The program itself is assembled afresh on every call, in time linear in its size
(:mod:`optirebal.program.conic`); a workspace keeps what a call learns that the next call of the
same shape can start from: the wash-sale direction of each substantially-identical group (bought,
or sold at a loss) chosen where the last call met a same-solve conflict. Fixing them before the
first solve means a warm call
solves once unless a new conflict appears.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optirebal.decode import group_flows
from optirebal.events import Event
from optirebal.program.data import ProblemData
from optirebal.program.fixes import block_groups
from optirebal.program.solve import TOLERANCE, Solution


@dataclass(eq=False)
class Workspace:
    """Per shape: the wash-sale directions of the last call (group name -> side)."""


    directions: dict[str, str] = field(default_factory=dict)  # "bought" or "sold at a loss"

    def known_directions(self, data: ProblemData, events: list[Event]) -> ProblemData:
        """``data`` with the directions of the last call fixed: no buys of a group it sold at a
        loss, no loss sales of a group it bought. Groups without taxable loss lots now, or not
        in the portfolio, are left alone."""
        if not self.directions:
            return data
        codes, names = data.group_codes
        lot_security = data.pair_security[data.lot_pair]
        loss_lot = data.taxable_lot & (data.gain_fraction < 0) & (data.sell_cap > 0)
        has_loss = np.bincount(codes[lot_security], weights=loss_lot, minlength=len(names)) > 0
        side = np.array([self.directions.get(str(name), "") for name in names])
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
        """Remember the sides of this call's conflicts, and of the last call's directions that
        the final ``solution`` still follows (a group it still buys, or still sells at a loss);
        the others lapse, so a direction never outlives its reason."""
        zero = TOLERANCE[solution.solver]
        bought, lost = group_flows(data, solution.buys, solution.sells)
        index = {str(name): g for g, name in enumerate(data.group_codes[1])}
        kept = {name: side for name, side in self.directions.items() if name in index and (
            bought[index[name]] > zero if side == "bought" else lost[index[name]] > zero)}
        self.directions = {**kept, **conflicts}
