"""Dashboard pages served by the service: pre-trade (form, cost curve, strategy table), the efficient
frontier, recent TCA, and model versions with drift.  Plots are plotly.js (served locally, no network); the
pages read the service's own JSON endpoints."""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

__all__ = ["DASHBOARD_JS", "PLOTLY_JS", "dashboard_router", "page"]


@functools.cache
def PLOTLY_JS() -> bytes:
    """plotly.js as shipped in the plotly package."""
    import plotly  # type: ignore[import-untyped]

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


_PAGES = (("pretrade", "Pre-trade"), ("frontier", "Frontier"), ("tca", "TCA"), ("models", "Models & drift"))

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#222}
nav{background:#1f2d3d;padding:.6em 1.2em}nav a{color:#dde;margin-right:1.4em;text-decoration:none}
nav a.on{color:#fff;font-weight:600}main{max-width:1100px;margin:1.2em auto;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}form label{margin-right:1em}input,select{margin-left:.3em}
.alert{background:#fde2e1;border:1px solid #e99;padding:.6em;margin:.6em 0}.ok{background:#e3f6e5;
border:1px solid #9c9;padding:.6em;margin:.6em 0}.err{color:#b00}.plot{width:100%;height:420px}
#key{width:14em}.key{float:right;color:#dde}
"""

_ORDER_FORM = """
<form id="order" onsubmit="event.preventDefault(); go();">
 <label>Symbol <select name="symbol">{options}</select></label>
 <label>Side <select name="side"><option>buy</option><option>sell</option></select></label>
 <label>Quantity <input name="quantity" type="number" min="1" step="1" value="50000" required></label>
 {extra}
 <button type="submit" id="submit">Analyse</button>
</form><p id="status" class="err"></p>
"""

_THRESHOLD = '<label>Threshold bps <input name="threshold_bps" type="number" value="10" step="0.5"></label>'
_HORIZON = '<label>Horizon min <input name="horizon_min" type="number" value="30" min="1" max="390"></label>'
_BODIES = {
    "pretrade": _ORDER_FORM.replace("{extra}", _THRESHOLD)
    + '<div id="summary"></div><h2>Strategies</h2><div id="strategies"></div><h2>Cost over horizons</h2>'
    '<div id="curve" class="plot"></div>',
    "frontier": _ORDER_FORM.replace("{extra}", _HORIZON)
    + '<div id="frontier" class="plot"></div><div id="points"></div>',
    "tca": '<p><button id="refresh" onclick="go()">Refresh</button></p><p id="status" class="err"></p>'
    '<div id="scatter" class="plot"></div><h2>Recent orders</h2><div id="orders"></div>',
    "models": '<p id="status" class="err"></p><div id="banner"></div><h2>Versions</h2><div id="versions"></div>'
    '<h2>Forecast accuracy on own fills</h2><div id="accuracy"></div>'
    '<h2>Drift against the training window</h2><div id="drift"></div><div id="psi" class="plot"></div>',
}


def page(name: str, symbols: list[str]) -> str:
    """One dashboard page: the navigation, the page's form and containers; the drawing is in dashboard.js."""
    options = "".join(f"<option>{html.escape(s)}</option>" for s in symbols)
    nav = "".join(f'<a href="/dashboard/{k}" class="{"on" if k == name else ""}">{t}</a>' for k, t in _PAGES)
    title = dict(_PAGES)[name]
    key = '<span class="key">API key <input id="key" type="password" onchange="saveKey()"></span>'
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>impactlab — {title}</title>
<style>{_STYLE}</style><script src="/static/plotly.min.js"></script><script src="/static/dashboard.js"></script>
</head><body data-page="{name}"><nav>{nav}{key}</nav>
<main><h1>{title}</h1>{_BODIES[name].replace("{options}", options)}</main></body></html>"""


@functools.cache
def DASHBOARD_JS() -> bytes:
    """The dashboard's script."""
    return (Path(__file__).parent / "static" / "dashboard.js").read_bytes()


def dashboard_router(symbols: Callable[[], list[str]]) -> APIRouter:
    """The dashboard's routes (``/dashboard/<page>``).  The pages are shells with no data in them: what they
    show comes from the JSON endpoints, which ask for the API key the page's key box holds when reads need
    one."""
    r = APIRouter(tags=["dashboard"], include_in_schema=False)

    async def home() -> HTMLResponse:
        return HTMLResponse('<!doctype html><meta http-equiv="refresh" content="0; url=/dashboard/pretrade">')

    r.add_api_route("/", home, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/dashboard", home, methods=["GET"], response_class=HTMLResponse)
    for key, _ in _PAGES:
        r.add_api_route(f"/dashboard/{key}", functools.partial(_view, key, symbols), methods=["GET"],
                        response_class=HTMLResponse)  # fmt: skip
    return r


async def _view(name: str, symbols: Callable[[], list[str]]) -> HTMLResponse:
    return HTMLResponse(page(name, symbols()))
