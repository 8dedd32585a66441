"""The simulator: matching, queue positions, rejects, calibrated flow, replay, the AC world and the envs."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from typer.testing import CliRunner

import impactlab.simulation as sim
from impactlab.data.lobster import load_lobster
from impactlab.data.market import EventFlag, EventKind
from impactlab.errors import SimulationError
from impactlab.schedules import AlmgrenChriss
from impactlab.simulation import _kernels as k
from tests.conftest import lobster_path

NS = 1_000_000_000


@pytest.fixture(scope="module")
def goog(data: Path):  # type: ignore[no-untyped-def]
    return load_lobster(lobster_path(data, "GOOG", 10), lobster_path(data, "GOOG", 10, "orderbook"))


@pytest.fixture(scope="module")
def goog_replay(goog):  # type: ignore[no-untyped-def]
    return sim.ReplayData.from_day(goog)


def test_replay_rebuilds_the_lobster_book_file(goog, goog_replay) -> None:  # type: ignore[no-untyped-def]
    m = sim.ReplayMarket(goog_replay)
    ap, asz = goog.ask()
    bp, bsz = goog.bid()
    ts = goog.ts_ns
    rows = np.linspace(10, len(goog) - 2, 400).astype(int)
    rows = rows[ts[rows + 1] != ts[rows]]  # the book after the last message of a timestamp
    for r in rows:
        m.run_to(int(ts[r]))
        b = m.book(10)
        np.testing.assert_allclose(b.bid_price, bp[r], err_msg=f"row {r}")
        np.testing.assert_allclose(b.ask_size, asz[r], err_msg=f"row {r}")
        np.testing.assert_allclose(b.ask_price, ap[r], err_msg=f"row {r}")
        np.testing.assert_allclose(b.bid_size, bsz[r], err_msg=f"row {r}")


def test_market_order_walks_the_real_book_and_consumed_liquidity_does_not_reappear(goog_replay) -> None:  # type: ignore[no-untyped-def]
    t0 = goog_replay.start_ns + 3600 * NS
    m = sim.ReplayMarket(goog_replay, start_ns=t0)
    before = m.book(10)
    qty = float(before.ask_size[:3].sum() + 1)
    m.submit(1, qty, order_type="market", local_ns=t0)
    ev = m.step(t0)
    fills = [e for e in ev if e.kind == "fill"]
    assert [f.price for f in fills[:3]] == pytest.approx(list(before.ask_price[:3]))
    assert [f.quantity for f in fills[:3]] == pytest.approx(list(before.ask_size[:3]))
    assert sum(f.quantity for f in fills) == pytest.approx(qty)
    assert all(f.liquidity == "taker" for f in fills)
    after = m.book(10)
    assert after.ask_price[0] == pytest.approx(before.ask_price[3])  # three levels gone
    assert after.ask_size[0] == pytest.approx(before.ask_size[3] - 1)
    # the same book without the trade still shows them
    ref = sim.ReplayMarket(goog_replay, start_ns=t0)
    assert ref.book(1).ask_price[0] == pytest.approx(before.ask_price[0])


def test_impact_overlay_moves_later_prices_and_decays(goog_replay) -> None:  # type: ignore[no-untyped-def]
    t0 = goog_replay.start_ns + 3600 * NS
    ov = sim.ImpactOverlay(permanent_per_share=0.0, transient_per_share=0.001, resilience_per_s=0.1)
    with_ov = sim.ReplayMarket(goog_replay, start_ns=t0, overlay=ov)
    without = sim.ReplayMarket(goog_replay, start_ns=t0)
    for m in (with_ov, without):
        m.submit(1, 200, order_type="market", local_ns=t0)
        m.step(t0 + NS)
    assert with_ov.impact_shift_ticks == round(200 * 0.001 / 0.01 * np.exp(-0.1))  # κq e^{−ρt} in ticks
    assert with_ov.book(1).mid - without.book(1).mid == pytest.approx(with_ov.impact_shift_ticks * 0.01)
    with_ov.step(t0 + 60 * NS)
    assert with_ov.impact_shift_ticks == 0  # 20 ticks × e^{−6} rounds to 0


def test_limit_order_joins_the_back_of_the_queue_and_fills_after_it(goog_replay) -> None:  # type: ignore[no-untyped-def]
    t0 = goog_replay.start_ns + 1800 * NS
    m = sim.ReplayMarket(goog_replay, start_ns=t0)
    b = m.book(1)
    oid = m.submit(-1, 50, price=float(b.ask_price[0]), local_ns=t0)
    m.step(t0)
    assert m.queue_ahead(oid) == pytest.approx(b.ask_size[0])
    for t in range(1, 3600):
        m.step(t0 + t * NS)
        if m.order(oid)["status"] != "live":
            break
        assert m.queue_ahead(oid) <= b.ask_size[0] + 1e-9  # it only moves forward
    assert m.order(oid)["filled"] > 0


def test_an_execution_at_a_worse_price_fills_a_resting_order_it_went_through(goog, goog_replay) -> None:  # type: ignore[no-untyped-def]
    t0 = goog_replay.start_ns + 1800 * NS
    m = sim.ReplayMarket(goog_replay, start_ns=t0)
    b = m.book(1)
    bid = float(b.bid_price[0]) + 0.01  # a better bid than anyone's, alone at its price
    oid = m.submit(1, 30, price=bid, local_ns=t0)
    m.step(t0)
    # the next historical sale into the bid side at or below the old best
    ev = goog.events
    later = (ev.ts_ns > t0) & (ev.kind == EventKind.FILL) & ((ev.flags & EventFlag.HIDDEN) == 0) & (ev.side == 1)
    t_hit = int(ev.ts_ns[later][0])
    events = m.step(t_hit)
    fills = [e for e in events if e.kind == "fill" and e.order_id == oid]
    assert m.order(oid)["status"] == "done"  # filled in full: the seller went through our better bid first
    assert fills and all(f.price == pytest.approx(bid) and f.liquidity == "maker" for f in fills)
    assert all(f.exchange_ns <= t_hit for f in fills)


def test_a_new_order_priced_through_a_resting_one_fills_it(goog, goog_replay) -> None:  # type: ignore[no-untyped-def]
    t0 = goog_replay.start_ns + 1800 * NS
    # the first historical sell limit order that lands inside the spread after t0: post our bid at its price
    # just before it arrives, alone and better than the historical best bid
    ev, bk = goog.events, goog.book
    later = (ev.ts_ns > t0 + NS) & (ev.kind == EventKind.ADD) & (ev.side == -1)
    idx = np.flatnonzero(later)
    j = next(int(i) for i in idx if bk.bid_price[i - 1, 0] < ev.price[i] < bk.ask_price[i - 1, 0])
    t_add = int(ev.ts_ns[j])
    px = float(ev.price[j])
    m = sim.ReplayMarket(goog_replay, start_ns=t_add - 1_000)
    oid = m.submit(1, 10, price=px, local_ns=t_add - 1_000)
    m.step(t_add - 1)
    assert m.order(oid)["status"] == "live" and m.order(oid)["filled"] == 0
    events = m.step(t_add)
    fills = [e for e in events if e.kind == "fill" and e.order_id == oid]
    assert m.order(oid)["filled"] == pytest.approx(min(10.0, float(ev.size[j])))
    assert fills and all(f.price == pytest.approx(px) and f.liquidity == "maker" for f in fills)
    # an order one tick above ours does not cross it
    m2 = sim.ReplayMarket(goog_replay, start_ns=t_add - 1_000)
    oid2 = m2.submit(1, 10, price=px - 0.01, local_ns=t_add - 1_000)
    m2.step(t_add)
    assert m2.order(oid2)["filled"] == 0


def test_simulated_order_joins_the_queue_behind_resting_volume_and_self_trades_are_refused() -> None:
    m = sim.QueueReactiveMarket(sim.QueueReactiveParams.published(), seed=3)
    m.run_to(60 * NS)
    b = m.book(1)
    oid = m.submit(-1, 100, price=float(b.ask_price[0]))
    m.step(m.now_ns)
    assert m.queue_ahead(oid) == pytest.approx(b.ask_size[0])
    assert m.book(1).ask_size[0] == pytest.approx(b.ask_size[0] + 100)  # it is in the simulated book
    m.submit(1, 1.0, order_type="market")  # would trade against our own resting sell
    ev = m.step(m.now_ns)
    assert any(e.kind == "rejected" and "own resting order" in e.reason for e in ev)


@pytest.mark.parametrize("hit", [k.hit_own, k.hit_own_py])
def test_aggressors_fill_a_resting_order_only_after_the_queue_ahead(hit) -> None:  # type: ignore[no-untyped-def]
    own = np.zeros((2, 8))
    own[1, 3] = 100.0
    oi = np.zeros((4, 5), dtype=np.int64)
    oi[0] = (1, -1, 3, 0, 0)  # a live sell at ladder index 3
    of = np.zeros((4, 2))
    of[0] = (100.0, 200.0)  # 200 shares ahead of it
    fi, ff, st = np.zeros((8, 4), dtype=np.int64), np.zeros(8), np.zeros(k.N_ST, dtype=np.int64)
    assert hit(own, oi, of, fi, ff, st, 1, 3, 150.0, 1, k.ARR_UNKNOWN) == 0.0
    assert of[0, k.Q_AHEAD] == pytest.approx(50.0)
    assert hit(own, oi, of, fi, ff, st, 1, 3, 80.0, 2, k.ARR_UNKNOWN) == pytest.approx(30.0)
    assert of[0, k.Q_REM] == pytest.approx(70.0) and st[k.ST_NFILL] == 1 and fi[0, 3] == 1  # a maker fill
    # LOBSTER: an execution of an order that arrived after ours means ours went first
    oi[0, k.O_TJOIN] = 10
    assert hit(own, oi, of, fi, ff, st, 1, 3, 500.0, 3, 20) == pytest.approx(70.0)
    assert oi[0, k.O_STATE] == 0


def test_bad_orders_are_rejected_with_a_reason_not_raised() -> None:
    m = sim.QueueReactiveMarket(sim.QueueReactiveParams.published(), seed=1)
    m.run_to(NS)
    m.submit(1, 0.0, price=100.0)
    m.submit(1, -5.0, price=100.0)
    m.submit(1, 10.0, price=100.005)
    m.submit(2, 10.0, price=100.0)
    m.cancel(12345)
    ev = m.step(m.now_ns + 1)
    reasons = [e.reason for e in ev if e.kind == "rejected"]
    assert len(reasons) == 5
    assert "'quantity' must be > 0" in reasons[0] and "'quantity'" in reasons[1]
    assert "tick grid" in reasons[2] and "'side'" in reasons[3] and "unknown order id 12345" in reasons[4]
    m.run_to(m.now_ns + 10 * NS)  # the simulation carries on
    assert m.events_processed > 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cancel_rate_per_s": (0.5, 0.0)}, "cancel_rate_per_s[1]"),
        ({"limit_rate_per_s": (1.0, -1.0)}, "limit_rate_per_s[1]"),
        ({"market_rate_per_s": float("nan")}, "market_rate_per_s"),
        ({"limit_size": 0.0}, "limit_size"),
    ],
)
def test_impossible_rates_fail_at_construction_naming_the_field(kwargs, field) -> None:  # type: ignore[no-untyped-def]
    base = {"limit_rate_per_s": (1.0, 0.5), "cancel_rate_per_s": (0.5, 0.5), "market_rate_per_s": 0.5}
    with pytest.raises(SimulationError, match=field.replace("[", r"\[").replace("]", r"\]")):
        sim.QueueReactiveParams(**{**base, **kwargs})


def test_hawkes_rejects_an_explosive_process() -> None:
    with pytest.raises(SimulationError, match="branching"):
        sim.HawkesParams(0.1, 0.8, 0.5, 1.0)


def test_cst_kernel_matches_its_python_twin() -> None:
    p = sim.QueueReactiveParams.published()
    runs = []
    for fn in (k.cst_run, k.cst_run_py):
        m = sim.QueueReactiveMarket(p, seed=7, record=True)
        m.submit(1, 300, price=float(m.book(1).bid_price[0]))
        m.run_to(1)
        args = (m._q, m._top, m._own, m._oi, m._of, m._fi, m._ff, m._st, m._sf, m._lam, m._theta, m._prm)
        fn(*args, m._ubuf[:4000], 30.0, m._rec_i, m._rec_q, True)
        runs.append((m._q.copy(), m._rec_i[: m._st[k.ST_NREC]].copy(), m._of.copy(), m._st.copy()))
    for a, b in zip(runs[0], runs[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_fitted_cst_rates_are_plausible_and_the_market_runs(goog) -> None:  # type: ignore[no-untyped-def]
    p = sim.fit_queue_reactive(goog)
    assert p.extra["n_limit"] > 10_000 and p.extra["n_market"] > 1_000
    assert 0 < p.market_rate_per_s < 1  # GOOG: about 0.13 market orders a second per side
    # near its own best quote GOOG's limit orders are much denser than inside its ~27-tick spread
    i = round(p.extra["mean_spread_ticks"])
    assert p.limit_rate_per_s[i] > 5 * p.limit_rate_per_s[0]
    m = sim.QueueReactiveMarket(p, price=580.0, initial_spread_ticks=i, seed=1)
    m.run_to(600 * NS)
    b = m.book(1)
    assert np.isfinite(b.mid) and b.spread > 0


def test_hawkes_fit_recovers_simulated_parameters() -> None:
    true = sim.HawkesParams(0.2, 0.6, 0.2, 2.0)
    m = sim.QueueReactiveMarket(sim.QueueReactiveParams.published(), hawkes=true, seed=11, record=True)
    m.run_to(20_000 * NS)
    rec = m.records()
    ex = rec[rec["type"] == 4]
    t = ex["t_ns"].to_numpy() / 1e9
    sign = (-ex["side"].to_numpy()).astype(np.int8)
    keep = np.r_[True, (np.diff(t) > 0) | (np.diff(sign) != 0)]  # one market order may walk levels
    fit = sim.fit_hawkes(t[keep], sign[keep], horizon_s=20_000.0)
    for name in ("baseline_per_s", "alpha_self", "alpha_cross", "beta_per_s"):
        est, se = getattr(fit, name), fit.std_errors[name]
        assert abs(est - getattr(true, name)) < 4 * se, (name, est, se)


def test_almgren_chriss_world_gives_E_and_V_within_monte_carlo_error() -> None:
    ac = AlmgrenChriss(quantity=1e6, horizon=5, n_steps=5, sigma=0.95, eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625)
    world = sim.AlmgrenChrissWorld(1e6, 5.0, 5, 50.0, 0.95, 2.5e-6, 2.5e-7, 0.0625)
    s = ac.solve(2e-6)
    e, v = ac.moments(np.asarray(s.holdings))
    cost = world.simulate(np.asarray(s.trades), n_paths=100_000, seed=5)
    n = cost.size
    assert abs(cost.mean() - e) < 4 * np.sqrt(v / n)
    assert abs(cost.var() - v) < 4 * v * np.sqrt(2 / (n - 1))
    assert world.moments(np.asarray(s.trades)) == pytest.approx((e, v))


def test_environments_pass_check_env_and_are_deterministic(goog_replay) -> None:  # type: ignore[no-untyped-def]
    envs = [
        gym.make("impactlab/Liquidation-v0").unwrapped,
        gym.make("impactlab/LOBExecution-v0").unwrapped,
        gym.make("impactlab/LOBExecution-v0", market="replay", replay_data=goog_replay).unwrapped,
        sim.LOBExecutionEnv(sim.LOBExecutionConfig(action="discrete", side=-1)),
    ]
    for env in envs:
        check_env(env, skip_render_check=True)
        totals = []
        for _ in range(2):
            env.reset(seed=42)
            env.action_space.seed(0)
            total, done = 0.0, False
            while not done:
                _, r, done, _, _ = env.step(env.action_space.sample())
                total += r
            totals.append(total)
        assert totals[0] == totals[1]


def test_liquidation_rewards_add_up_to_minus_the_shortfall() -> None:
    env = sim.LiquidationEnv()
    env.reset(seed=1)
    total, done = 0.0, False
    prices = []
    while not done:
        _, r, done, _, info = env.step(np.array([0.5], np.float32))
        prices.append(info["execution_price"])
        total += r
    w = env.world
    shortfall = w.quantity * w.price - float(np.dot(env.trades, prices))
    assert total == pytest.approx(-shortfall / (w.quantity * w.price) * 1e4, rel=1e-9)


def test_backtest_cli_parts_add_up(data: Path) -> None:
    from impactlab.cli.main import app

    r = CliRunner().invoke(
        app, ["backtest", "--schedule", "twap", "--venue", "replay", "--qty", "2000", "--horizon", "10m", "--json"]
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    parts = res["execution_bps"] + res["timing_bps"] + res["fees_bps"] + res["opportunity_bps"]
    assert res["shortfall_bps"] == pytest.approx(parts)
    assert res["filled"] == pytest.approx(2000)
    assert res["shortfall_bps"] > 0  # buying 2,000 GOOG in 10 minutes costs something
    r = CliRunner().invoke(app, ["simulate", "--model", "cst", "--duration", "60s", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["events"] > 0 and out["rates"]["mu_published"] == 0.94


def test_backtest_waits_for_the_last_childs_response_under_latency(goog_replay) -> None:  # type: ignore[no-untyped-def]
    from impactlab.simulation.backtest import run_schedule

    t0 = goog_replay.start_ns + 3600 * NS
    lat = sim.ConstantLatency(5_000_000)  # 5 ms each way: the child sent at the horizon lands after it
    m = sim.ReplayMarket(goog_replay, start_ns=t0, entry_latency=lat, response_latency=lat)
    res = run_schedule(m, np.array([0.0, 30.0, 60.0]), np.full(3, 100.0), 1, horizon_s=60.0)
    assert res.filled == pytest.approx(300.0)
    assert res.opportunity_bps == 0.0
    assert not m.awaiting_responses


def test_binance_replay_leaves_out_far_levels_and_counts_them(data: Path) -> None:
    from impactlab.data.binance import load_binance

    day = load_binance(data / "binance" / "usdm" / "ethusdt_20240719.gz")
    cap = day.extras["capture"]
    rd = sim.ReplayData.from_day(day, band_fraction=0.1)
    lp = cap.depth.level_price
    tp = np.asarray(cap.trades["price"])
    far = int(((lp < tp.min() * 0.9) | (lp > tp.max() * 1.1)).sum())
    assert far > 0  # the capture carries levels tens of percent away
    assert rd.counts["levels_outside_band"] == far
    assert rd.counts["level_updates"] == lp.size - far
    assert rd.ladder_ticks < (tp.max() * 1.1 - tp.min() * 0.9) / rd.tick_size + 4100
    m = sim.ReplayMarket(rd)
    m.run_to(rd.end_ns)
    b = m.book(1)
    assert tp.min() * 0.99 < b.mid < tp.max() * 1.01
    with pytest.raises(SimulationError, match="band_fraction"):
        sim.ReplayData.from_day(day, band_fraction=0.0)
