"""Impact models: parametric (Kyle, OFI, square-root, power-law, I-Star), propagator, Obizhaeva–Wang."""

from impactlab.impact._base import ImpactModel, load_model
from impactlab.impact.ml import QuantileGBMImpact
from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
from impactlab.impact.parametric import IStarImpact, KyleLambdaImpact, OFIImpact, PowerLawImpact, SquareRootImpact
from impactlab.impact.propagator import PropagatorModel
from impactlab.impact.results import ImpactEstimate, ImpactResult

__all__ = [
    "IStarImpact",
    "ImpactEstimate",
    "ImpactModel",
    "ImpactResult",
    "KyleLambdaImpact",
    "OFIImpact",
    "ObizhaevaWangImpact",
    "PowerLawImpact",
    "PropagatorModel",
    "QuantileGBMImpact",
    "SquareRootImpact",
    "load_model",
]
