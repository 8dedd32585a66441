"""The pre-trade service: a FastAPI app (``impactlab serve``) with impact estimates, pre-trade reports,
schedules, the efficient frontier, TCA of submitted fills, model versions with drift monitoring and a
recalibration hook, hedging-engine status, Prometheus metrics and a plotly dashboard."""

from impactlab.service.app import ServiceState, create_app
from impactlab.service.config import API_KEY_HEADER, ServiceConfig
from impactlab.service.drift import DriftReport, FeatureDrift, drift_report, psi
from impactlab.service.models import ServiceModels

__all__ = [
    "API_KEY_HEADER",
    "DriftReport",
    "FeatureDrift",
    "ServiceConfig",
    "ServiceModels",
    "ServiceState",
    "create_app",
    "drift_report",
    "psi",
]
