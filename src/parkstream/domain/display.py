"""Display policy: which colour (and blink) a bay's light shows for each state."""

from __future__ import annotations

from pydantic import Field

from parkstream.domain.envelope import Record
from parkstream.domain.kuando import Frame, colour_frame_hex
from parkstream.domain.states import SpaceState


class DisplayStyle(Record):
    colour: str = Field(pattern=r"^[0-9A-Fa-f]{6}$", description="RRGGBB")
    on: int = Field(default=255, ge=0, le=255, description="On time, 100 ms steps.")
    off: int = Field(default=0, ge=0, le=255, description="Off time, 100 ms steps; 0 = solid.")

    def frame(self) -> Frame:
        return colour_frame_hex(self.colour, self.on, self.off)


def _solid(colour: str) -> DisplayStyle:
    return DisplayStyle(colour=colour)


# Colours tuned on real lights by the reviewed platform's operators: reserved orange
# is FF3200 (FFA500 looked yellow), free green, occupied red.
DEFAULT_STYLES: dict[SpaceState, DisplayStyle] = {
    SpaceState.FREE: _solid("00FF00"),
    SpaceState.OCCUPIED: _solid("FF0000"),
    SpaceState.RESERVED: _solid("FF3200"),
    SpaceState.RESERVED_SOON: DisplayStyle(colour="FFFF00", on=10, off=10),
    SpaceState.UNKNOWN: _solid("404040"),
    SpaceState.OUT_OF_ORDER: _solid("800080"),
    SpaceState.MAINTENANCE: _solid("0000FF"),
    SpaceState.BLOCKED: _solid("808080"),
    SpaceState.ARCHIVED: _solid("000000"),
}


class DisplayPolicy(Record):
    """A tenant's mapping from bay state to light style; states left out use the defaults."""

    version: int = Field(default=1, ge=1, description="Bumped by the tenant on every change.")
    styles: dict[SpaceState, DisplayStyle] = Field(default_factory=dict)

    def style_for(self, state: SpaceState) -> DisplayStyle:
        return self.styles.get(state) or DEFAULT_STYLES[state]

    def frame_for(self, state: SpaceState) -> Frame:
        return self.style_for(state).frame()


DEFAULT_POLICY = DisplayPolicy()
