"""Impact models: parametric (Kyle, OFI, square-root, power-law, I-Star), propagator, Obizhaeva–Wang, ML."""

from impactlab.impact._base import ImpactModel, load_model
from impactlab.impact.ml import ConformalRegressorImpact, OnnxForecaster, QuantileGBMImpact
from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
from impactlab.impact.parametric import (
    IStarImpact,
    KyleLambdaImpact,
    OFIImpact,
    PowerLawImpact,
    SpreadSquareRootImpact,
    SquareRootImpact,
)
from impactlab.impact.propagator import PropagatorModel
from impactlab.impact.results import ImpactEstimate, ImpactResult

__all__ = [
    "ConformalRegressorImpact",
    "IStarImpact",
    "ImpactEstimate",
    "ImpactModel",
    "ImpactResult",
    "KyleLambdaImpact",
    "OFIImpact",
    "ObizhaevaWangImpact",
    "OnnxForecaster",
    "PowerLawImpact",
    "PropagatorModel",
    "QuantileGBMImpact",
    "SpreadSquareRootImpact",
    "SquareRootImpact",
    "load_model",
]
