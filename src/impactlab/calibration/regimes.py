"""Volatility and liquidity regimes: detection, labels for forecasts, parameters per regime, a timeline plot.

A Gaussian mixture on rolling realised volatility, spread and depth (logs, standardized) finds the
regimes; they are numbered by volatility, 0 the calmest.  A block or an order gets the regime of the last
bar that closed before it starts (nothing from its own future).  Any impact model can then be fitted per
regime, and the label is a feature of the machine-learned forecasts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.mixture import GaussianMixture

from impactlab.errors import CalibrationError
from impactlab.impact._base import ImpactModel
from impactlab.impact.results import ImpactResult

__all__ = [
    "REGIME_INPUTS",
    "RegimeDetector",
    "fit_by_regime",
    "label_rows",
    "market_regimes",
    "plot_regime_timeline",
    "regime_inputs",
]

F64 = NDArray[np.float64]
REGIME_INPUTS = ("rolling_vol_bps", "rolling_spread_bps", "rolling_depth")


def regime_inputs(bars: pd.DataFrame, *, window_bars: int = 30) -> pd.DataFrame:
    """Rolling state of the market per bar, from :func:`impactlab.features.market_features` bars.

    ``rolling_vol_bps``: root mean square of the bar returns over the last ``window_bars`` bars;
    ``rolling_spread_bps`` and ``rolling_depth``: means of the bar mean spread and L1 depth.  The window
    ends with the bar itself (known when it closes).  The first ``window_bars − 1`` bars use what there is.
    """
    need = {"bar_start_ns", "return_bps", "spread_bps_mean", "depth_1_mean"}
    missing = need - set(bars.columns)
    if missing:
        raise CalibrationError(f"regime inputs need bar columns {sorted(missing)}")
    if window_bars < 2:
        raise ValueError(f"'window_bars' must be >= 2, got {window_bars}")
    r = bars["return_bps"].fillna(0.0)
    out = pd.DataFrame(
        {
            "bar_start_ns": bars["bar_start_ns"].to_numpy(),
            "rolling_vol_bps": np.sqrt((r**2).rolling(window_bars, min_periods=1).mean()),
            "rolling_spread_bps": bars["spread_bps_mean"].ffill().rolling(window_bars, min_periods=1).mean(),
            "rolling_depth": bars["depth_1_mean"].ffill().rolling(window_bars, min_periods=1).mean(),
        }
    )
    return out.dropna().reset_index(drop=True)


@dataclass(frozen=True)
class RegimeDetector:
    """A fitted Gaussian mixture over :data:`REGIME_INPUTS`, regimes numbered by volatility.

    Build with :meth:`fit`; :meth:`to_dict` / :meth:`from_dict` store it as plain JSON.
    """

    mean: F64
    scale: F64
    weights: F64
    means: F64
    covariances: F64
    order: tuple[int, ...]

    @property
    def n_regimes(self) -> int:
        return len(self.order)

    @staticmethod
    def _z(x: pd.DataFrame) -> F64:
        v = x[list(REGIME_INPUTS)].to_numpy(np.float64)
        if np.any(v <= 0) or not np.all(np.isfinite(v)):
            raise CalibrationError("regime inputs must be finite and positive (logs are taken)")
        return np.asarray(np.log(v), dtype=np.float64)

    @classmethod
    def fit(cls, inputs: pd.DataFrame, *, n_regimes: int = 3, seed: int = 0) -> RegimeDetector:
        """Fit the mixture (full covariances, 5 initialisations, seeded) on the rows of ``inputs``."""
        if not 2 <= n_regimes <= 6:
            raise CalibrationError(f"'n_regimes' must be in [2, 6], got {n_regimes}")
        z = cls._z(inputs)
        if len(z) < 20 * n_regimes:
            raise CalibrationError(f"too little data for {n_regimes} regimes: {len(z)} rows")
        mean, scale = z.mean(axis=0), z.std(axis=0)
        if np.any(scale == 0):
            raise CalibrationError("a regime input is constant")
        gm = GaussianMixture(n_regimes, covariance_type="full", n_init=5, random_state=seed).fit((z - mean) / scale)
        order = tuple(int(i) for i in np.argsort(gm.means_[:, 0]))  # by the component mean of log vol, calm first
        return cls(mean, scale, gm.weights_, gm.means_, gm.covariances_, order)

    def _mixture(self) -> GaussianMixture:
        gm = GaussianMixture(self.n_regimes, covariance_type="full")
        gm.weights_, gm.means_, gm.covariances_ = self.weights, self.means, self.covariances
        gm.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(self.covariances)).astype(np.float64)
        return gm

    def predict_proba(self, inputs: pd.DataFrame) -> F64:
        """Probability of each regime (columns in regime order) per row."""
        p = self._mixture().predict_proba((self._z(inputs) - self.mean) / self.scale)
        return np.asarray(p[:, list(self.order)], dtype=np.float64)

    def predict(self, inputs: pd.DataFrame) -> NDArray[np.int64]:
        """Most likely regime per row (0 = calmest)."""
        return np.asarray(np.argmax(self.predict_proba(inputs), axis=1), dtype=np.int64)

    def describe(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Per regime: share of rows and the mean of each input (in their own units)."""
        lab = self.predict(inputs)
        df = inputs[list(REGIME_INPUTS)].assign(regime=lab)
        out = df.groupby("regime").mean()
        out.insert(0, "share", df.groupby("regime").size() / len(df))
        return out.reindex(range(self.n_regimes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "covariances": self.covariances.tolist(),
            "order": list(self.order),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegimeDetector:
        arr = {k: np.asarray(d[k], np.float64) for k in ("mean", "scale", "weights", "means", "covariances")}
        return cls(**arr, order=tuple(int(i) for i in d["order"]))


def label_rows(
    ts_ns: NDArray[np.int64], inputs: pd.DataFrame, labels: NDArray[np.int64], bar_ns: int
) -> NDArray[np.int64]:
    """Regime of the last bar that closed at or before each time (−1 before the first one closes)."""
    closes = inputs["bar_start_ns"].to_numpy(np.int64) + bar_ns
    idx = np.searchsorted(closes, np.asarray(ts_ns, np.int64), side="right") - 1
    return np.where(idx >= 0, labels[np.clip(idx, 0, None)], -1).astype(np.int64)


def fit_by_regime(
    factory: Callable[[], ImpactModel], data: pd.DataFrame, regimes: NDArray[np.int64], y: F64 | None = None
) -> dict[int, ImpactResult]:
    """Fit a fresh model per regime on that regime's rows; regimes with too little data raise
    :class:`CalibrationError` naming the regime."""
    out: dict[int, ImpactResult] = {}
    yv = None if y is None else np.asarray(y, float)
    for r in sorted(int(v) for v in np.unique(regimes) if v >= 0):
        m = regimes == r
        try:
            out[r] = factory().fit(data[m], None if yv is None else yv[m]).result_
        except CalibrationError as exc:
            raise CalibrationError(f"regime {r} ({int(m.sum())} rows): {exc}") from exc
    return out


def plot_regime_timeline(inputs: pd.DataFrame, labels: NDArray[np.int64], path: str | Path, *, title: str = "") -> Path:
    """Volatility, spread and depth over the day, shaded by regime; written as PNG to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = (inputs["bar_start_ns"].to_numpy() - inputs["bar_start_ns"].iloc[0]) / 3.6e12
    fig, axes = plt.subplots(3, 1, figsize=(10, 6), sharex=True)
    colours = plt.get_cmap("RdYlGn_r")(np.linspace(0.1, 0.9, max(int(labels.max()) + 1, 2)))
    for ax, col, name in zip(
        axes, REGIME_INPUTS, ("realised vol (bps/bar)", "spread (bps)", "L1 depth (shares)"), strict=True
    ):
        ax.plot(t, inputs[col].to_numpy(), lw=0.8, color="black")
        lo, hi = ax.get_ylim()
        for r in range(int(labels.max()) + 1):
            ax.fill_between(
                t, lo, hi, where=labels == r, color=colours[r], alpha=0.35, step="post", lw=0, label=f"regime {r}"
            )
        ax.set_ylim(lo, hi)
        ax.set_ylabel(name)
    axes[0].legend(loc="upper right", ncol=int(labels.max()) + 1, fontsize=8)
    axes[-1].set_xlabel("hours since the open")
    if title:
        axes[0].set_title(title)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def market_regimes(
    day: Any,
    *,
    bar_s: float = 10.0,
    window_bars: int = 30,
    n_regimes: int = 3,
    seed: int = 0,
    fit_until_ns: int | None = None,
) -> tuple[RegimeDetector, pd.DataFrame, NDArray[np.int64]]:
    """Regimes of a market day: ``(detector, inputs per bar, label per bar)``.

    With ``fit_until_ns`` the mixture is fitted on the bars that closed by then only, and labels the
    rest out of sample (for forecasts evaluated walk-forward).
    """
    from impactlab.features.pipeline import market_features

    inputs = regime_inputs(market_features(day, bar_s=bar_s).bars.to_pandas(), window_bars=window_bars)
    fit_rows = inputs
    if fit_until_ns is not None:
        fit_rows = inputs[inputs["bar_start_ns"] + round(bar_s * 1e9) <= fit_until_ns]
    det = RegimeDetector.fit(fit_rows, n_regimes=n_regimes, seed=seed)
    return det, inputs, det.predict(inputs)
