"""The one catalogue of impact models: every name the CLI, the service, ``calibrate compare``, the forecast
commands and the docs know, with what each is fitted on, what the data must have, its defaults, and whether
its cost depends on the horizon.

The class registry of :mod:`impactlab.impact._base` only maps a model file's class name to its class (what
:func:`~impactlab.impact.load_model` builds); this catalogue is the list of models a user chooses from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from impactlab.errors import CalibrationError

__all__ = ["MODELS", "ModelSpec", "describe_models", "model_names", "spec"]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One model of the catalogue.

    Attributes
    ----------
    name
        The name users type (``impactlab calibrate NAME``, ``forecast train --model NAME``).
    family
        ``parametric``, ``transient``, ``machine-learned`` or ``instrument`` (the decision model).
    fits_on
        The datasets it is fitted on: ``bars`` (interval flows), ``orders`` (parent-order outcomes),
        ``trades`` (trade signs, the propagator), ``events`` (large market orders and the book's response),
        ``book`` (the book's resilience), ``blocks`` (block features, the ML forecasts), ``day`` (a whole
        market day: the instrument model).
    needs
        What the data must hold: ``depth>=2``, ``trades``, ``parent orders``, ``quotes``.
    cls
        ``module:Class`` of the estimator (imported when a model is built, so that reading the catalogue loads
        no model library).
    defaults
        The constructor settings the name stands for.
    horizon_dependent
        Whether the model's cost of a schedule changes with its horizon or rate.
    summary
        One line for the help and the docs.
    """

    name: str
    family: str
    fits_on: tuple[str, ...]
    cls: str = ""
    needs: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    horizon_dependent: bool = False
    summary: str = ""

    def build(self, target: str | None = None) -> Any:
        """A fresh, unfitted model at the defaults (a machine-learned one for the ``target`` column)."""
        import importlib

        if not self.cls:
            raise CalibrationError(f"{self.name!r} is built from a market day: use calibrate_instrument")
        module, _, name = self.cls.partition(":")
        kw = dict(self.defaults)
        if self.family == "machine-learned":
            kw["target"] = target or "cost_bps"
        return getattr(importlib.import_module(module), name)(**kw)


_P, _ML, _OW = "impactlab.impact.parametric", "impactlab.impact.ml", "impactlab.impact.obizhaeva_wang"


def _specs() -> dict[str, ModelSpec]:
    def s(name: str, family: str, fits_on: tuple[str, ...], cls: str, summary: str, **kw: Any) -> tuple[str, ModelSpec]:
        return name, ModelSpec(name=name, family=family, fits_on=fits_on, cls=cls, summary=summary, **kw)

    return dict([
        s("instrument", "instrument", ("day",), "", "half-spread + Obizhaeva–Wang transient from the book + "
          "square-root permanent (half-spread + square-root law on a top-of-book day): what every decision "
          "prices with", needs=("quotes", "trades"), horizon_dependent=True),
        s("kyle", "parametric", ("bars",), f"{_P}:KyleLambdaImpact", "Kyle's λ: return on signed volume",
          needs=("trades",)),
        s("ofi", "parametric", ("bars",), f"{_P}:OFIImpact", "order-flow imbalance over depth (Cont, Kukanov, "
          "Stoikov)", needs=("quotes",)),
        s("sqrt", "parametric", ("bars", "orders"), f"{_P}:SquareRootImpact", "square-root law Yσ(Q/V)^½",
          defaults={"delta": 0.5}),
        s("sqrt-free", "parametric", ("bars", "orders"), f"{_P}:SquareRootImpact",
          "square-root law with a free exponent δ", defaults={"delta": None}),
        s("spread-sqrt", "parametric", ("orders", "blocks"), f"{_P}:SpreadSquareRootImpact",
          "half-spread + square-root law"),
        s("power-law", "parametric", ("orders",), f"{_P}:PowerLawImpact",
          "Almgren et al. (2005): temporary and permanent power laws in the rate", needs=("parent orders",),
          horizon_dependent=True),
        s("istar", "parametric", ("orders",), f"{_P}:IStarImpact", "I-Star (Kissell): instantaneous impact by POV",
          needs=("parent orders",), horizon_dependent=True),
        s("propagator", "transient", ("trades",), "impactlab.impact.propagator:PropagatorModel",
          "propagator: each trade's impact decaying by a fitted kernel (Bouchaud et al.)", needs=("trades",),
          defaults={"max_lag": 100}, horizon_dependent=True),
        s("ow", "transient", ("events",), f"{_OW}:ObizhaevaWangImpact",
          "Obizhaeva–Wang from large market orders and the mid's response", needs=("depth>=2", "trades"),
          horizon_dependent=True),
        s("ow-book", "transient", ("book",), f"{_OW}:ObizhaevaWangImpact",
          "Obizhaeva–Wang from the book's refill after each order", needs=("depth>=2",),
          defaults={"control_later_flow": False}, horizon_dependent=True),
        s("gbm", "machine-learned", ("blocks",), f"{_ML}:QuantileGBMImpact",
          "quantile gradient boosting, conformal intervals", horizon_dependent=True),
        s("gbm-scaled", "machine-learned", ("blocks",), f"{_ML}:QuantileGBMImpact",
          "quantile gradient boosting, scaled conformal intervals", defaults={"intervals": "scaled"},
          horizon_dependent=True),
        s("hybrid", "machine-learned", ("blocks",), f"{_ML}:QuantileGBMImpact",
          "square-root baseline + gradient-boosted residual", defaults={"baseline": "square_root"},
          horizon_dependent=True),
        s("rf", "machine-learned", ("blocks",), f"{_ML}:ConformalRegressorImpact",
          "random forest, conformal intervals", defaults={"kind": "random_forest"}, horizon_dependent=True),
        s("bayes", "machine-learned", ("blocks",), f"{_ML}:ConformalRegressorImpact",
          "Bayesian ridge, conformal intervals", defaults={"kind": "bayesian_ridge"}, horizon_dependent=True),
        s("mlp", "machine-learned", ("blocks",), f"{_ML}:ConformalRegressorImpact",
          "neural network, conformal intervals", defaults={"kind": "mlp"}, horizon_dependent=True),
    ])  # fmt: skip


MODELS: dict[str, ModelSpec] = _specs()
"""Every model by name (:class:`ModelSpec`)."""


def spec(name: str) -> ModelSpec:
    """The catalogue entry of ``name``; an unknown name is a :class:`~impactlab.errors.CalibrationError` that
    lists the known ones."""
    m = MODELS.get(name)
    if m is None:
        raise CalibrationError(f"unknown model {name!r}; choose from {model_names()}")
    return m


def model_names(*, family: str | None = None, fits_on: str | None = None) -> list[str]:
    """Names in the catalogue, optionally of one family or fitted on one dataset."""
    return [n for n, m in MODELS.items()
            if (family is None or m.family == family) and (fits_on is None or fits_on in m.fits_on)]  # fmt: skip


def describe_models() -> list[dict[str, Any]]:
    """The catalogue as plain rows (the docs' table and ``impactlab models catalogue``)."""
    return [{"name": m.name, "family": m.family, "fits_on": list(m.fits_on), "needs": list(m.needs),
             "defaults": dict(m.defaults), "horizon_dependent": m.horizon_dependent, "summary": m.summary}
            for m in MODELS.values()]  # fmt: skip
