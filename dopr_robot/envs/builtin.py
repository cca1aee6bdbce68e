"""The adapter of the toolkit's own families (ReachChain, PushChain, Balance, MetaWorld).

Their envs already speak the adapter protocol and are registered with gymnasium under their ids
(`catalog.register_with_gymnasium`), so the adapter only makes them, turning a bad setting into
one sentence; the expert and what H counts come from the family's record (`FamilyAdapter`).
"""

from __future__ import annotations

from typing import Any

import gymnasium

from ..errors import UserError
from .adapter import check_render_mode
from .family import FamilyAdapter


class BuiltinAdapter(FamilyAdapter):
    """The toolkit's own families: their envs already speak the protocol."""

    def make(self, **kwargs: Any) -> gymnasium.Env:
        check_render_mode(kwargs.get("render_mode"))
        try:
            return gymnasium.make(self.env_id, **kwargs)
        except (ValueError, TypeError) as error:
            raise UserError(f"cannot make {self.env_id}: {error}") from None
