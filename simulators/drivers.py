"""Simulated sensors implementing the edge Driver protocol (edge/drivers/base.py).

Each driver wraps one pure model of simulators.signals: `read(at_ms)` evaluates the model at
`at_ms`, adds any scripted episodes and returns canonical-unit samples. Nothing depends on
the order or rate of reads, so an accelerated demo clock, a test and a replay of the same
times all see the same values.

Options come from the sensor's `options` table in node.toml and are validated by a
msgspec.Struct that forbids unknown fields, so a typo is a clear ValueError (which the
driver registry reports as a configuration error). Every driver accepts:

- seed (int, 0): selects the noise streams; equal seeds give equal weather across families.
- origin_ms (int, default 0 = the Unix epoch): the instant episodes are timed from. It is a
  parameter rather than "the first read" so that values stay a pure function of time; a
  demo that wants episodes "a minute after start" passes its start time here.
- episodes (list of {quantity, start_s, duration_s, peak, ramp_s}): scripted additions
  (signals.Episode), e.g. to guarantee an exceedance at a known time.
- perturbations (list of {kind, quantity, start_s, duration_s, value}): scripted steps,
  ramps, spikes, stuck readings and dropouts that replace the model's values for a while,
  timed from origin_ms (simulators.perturbations documents their contract).
- fault_rate (0..1, 0): the share of reads that raise SensorTimeoutError, decided by a hash
  of (seed, at_ms): deterministic, and independent of which reads happened before.

and its family's own options (see each class).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Final

import msgspec

from edge.drivers.base import Sample, SensorIdentity, SensorTimeoutError
from edge.drivers.options import parse_options
from schemas.messages import Flag
from schemas.quantities import SPECS, Family, Quantity
from simulators.noise import channel_id, keyed_hash, stream_key, unit_from_hash
from simulators.perturbations import Perturbation, Perturbations
from simulators.physical import Site, SiteOptions
from simulators.signals import Body, Episode, TrophicState, Zone, clip

_FAULT_CHANNEL: Final = channel_id("driver.fault")
_FLAGS: Final[tuple[Flag, ...]] = ("simulated",)

Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class EpisodeOption(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One `episodes` entry of node.toml; see signals.Episode."""

    quantity: Quantity
    start_s: float
    duration_s: float
    peak: float
    ramp_s: float = 0.0


class CommonOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    seed: int = 0
    # None and 0 both mean "episodes are timed from the Unix epoch".
    origin_ms: int | None = None
    episodes: list[EpisodeOption] = []
    perturbations: list[Perturbation] = []
    fault_rate: Share = 0.0


class AirOptions(CommonOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    traffic: Share = 0.5  # 0 park .. 1 kerbside of an arterial road
    haze: bool = False  # a polluted-region site where stagnant weather builds haze


class MetOptions(CommonOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class NoiseOptions(CommonOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    zone: Zone = "2"  # GB 3096-2008 functional zone class


class OdourOptions(CommonOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    source_bearing_deg: float = 0.0  # from the sensor to the source, clockwise from north
    source_strength: Annotated[float, msgspec.Meta(ge=0.0, le=1000.0)] = 1.0
    plume_width_deg: Annotated[float, msgspec.Meta(ge=1.0, le=90.0)] = 15.0


class WaterOptions(CommonOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    body: Body = "lake"
    # 0 oligotrophic .. 1 hypereutrophic, or a name from signals.TROPHIC_STATES.
    trophic: Share | TrophicState = "eutrophic"


def build_episodes(
    options: Sequence[EpisodeOption], family: Family, driver: str
) -> dict[Quantity, tuple[Episode, ...]]:
    """Episodes grouped by quantity; each must be a quantity this driver measures."""
    grouped: dict[Quantity, list[Episode]] = {}
    for item in options:
        if SPECS[item.quantity].family != family:
            raise ValueError(
                f"episode quantity {item.quantity!r} is not measured by {driver} ({family} family)"
            )
        episode = Episode(item.quantity, item.start_s, item.duration_s, item.peak, item.ramp_s)
        grouped.setdefault(item.quantity, []).append(episode)
    return {q: tuple(es) for q, es in grouped.items()}


def _site_options(options: CommonOptions) -> SiteOptions:
    """A family's options are the site parameters of the same names."""
    own = set(options.__struct_fields__) - set(CommonOptions.__struct_fields__)
    return SiteOptions(seed=options.seed, **{name: getattr(options, name) for name in own})


class _SimDriver(SensorIdentity):
    """What every simulated driver shares: faults, episodes, clipping. Its values are its
    family's quantities of a simulated site (simulators.physical), so a driver of a seed sees
    the same weather as the byte-level device simulators of that seed."""

    FAMILY: ClassVar[Family]
    OPTIONS: ClassVar[type[CommonOptions]]

    def __init__(self, sensor_id: str, options: Mapping[str, Any]) -> None:
        opts = parse_options(options, self.OPTIONS, self.NAME)
        super().__init__(sensor_id, _FLAGS)
        self._site = Site(_site_options(opts))
        self._fault_rate = opts.fault_rate
        self._fault_key = stream_key(opts.seed, _FAULT_CHANNEL)
        self._origin_ms = opts.origin_ms or 0
        try:
            self._episodes = build_episodes(opts.episodes, self.FAMILY, self.NAME)
            self._perturbations = Perturbations(
                opts.perturbations, self._origin_ms, self.FAMILY, self.NAME
            )
        except ValueError as exc:
            raise ValueError(f"{self.NAME} options: {exc}") from None

    def read(self, at_ms: int) -> list[Sample]:
        if self._perturbations.sensor_dropped(at_ms):
            raise SensorTimeoutError(f"{self._sensor_id}: scripted dropout at {at_ms}")
        if self._fault_rate > 0.0 and self.faults_at(at_ms):
            raise SensorTimeoutError(f"{self._sensor_id}: simulated timeout at {at_ms}")
        values = self.model_at(at_ms)
        if self._perturbations:
            values = self._perturbations.apply(values, at_ms, self.model_at)
        return [Sample(q, v) for q, v in values.items()]

    def model_at(self, at_ms: int) -> dict[Quantity, float]:
        """The unperturbed values at `at_ms`: the site's model plus the episodes."""
        values = self._site.family(self.FAMILY, at_ms)
        if not self._episodes:
            return values
        return {q: self._with_episodes(q, v, at_ms) for q, v in values.items()}

    def faults_at(self, at_ms: int) -> bool:
        """Whether a read at `at_ms` times out (a pure function of seed and at_ms)."""
        return unit_from_hash(keyed_hash(self._fault_key, at_ms)) < self._fault_rate

    def _with_episodes(self, quantity: Quantity, value: float, at_ms: int) -> float:
        episodes = self._episodes.get(quantity)
        if episodes is None:
            return value
        extra = sum(e.offset(self._origin_ms, at_ms) for e in episodes)
        # An episode may push a value past its physical bounds (a DO crash below zero):
        # clip, as the models do, so a simulator never emits an impossible value.
        return clip(quantity, value + extra)

    def close(self) -> None:
        """Nothing to release."""


class SimAirDriver(_SimDriver):
    """Driver "sim-air": pm2_5, pm10, o3, no2, so2, co, tvoc.
    Options: traffic (0..1), haze (bool)."""

    NAME = "sim-air"
    FAMILY = "air"
    OPTIONS = AirOptions


class SimMetDriver(_SimDriver):
    """Driver "sim-met": air_temp, rh, pressure. No family options."""

    NAME = "sim-met"
    FAMILY = "met"
    OPTIONS = MetOptions


class SimNoiseDriver(_SimDriver):
    """Driver "sim-noise": laeq and lamax of each 1-s sample. Options: zone ("0".."4b")."""

    NAME = "sim-noise"
    FAMILY = "noise"
    OPTIONS = NoiseOptions


class SimOdourDriver(_SimDriver):
    """Driver "sim-odour": h2s, nh3, odour. Options: source_bearing_deg, source_strength,
    plume_width_deg."""

    NAME = "sim-odour"
    FAMILY = "odour"
    OPTIONS = OdourOptions


class SimWaterDriver(_SimDriver):
    """Driver "sim-water": water_temp, ph, do, codmn, nh3_n, tp, tn, turbidity, conductivity,
    chl_a, phycocyanin. Options: body ("lake" | "river"), trophic (0..1, or "oligotrophic",
    "mesotrophic", "eutrophic", "hypereutrophic")."""

    NAME = "sim-water"
    FAMILY = "water"
    OPTIONS = WaterOptions
