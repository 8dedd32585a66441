"""Helpers shared by the HTML reports (pre-trade, TCA): inline SVG plots."""

from __future__ import annotations

import io
from typing import Any


def svg(fig: Any) -> str:
    """A matplotlib figure as an inline ``<svg>`` element (closed after writing)."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]
