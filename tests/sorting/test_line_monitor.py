"""Line monitor KPIs from the tracker's mass balance; the balance message there and back."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sorting.accounting import RESIDUE, GradeLedger
from sorting.errors import ConfigError
from sorting.msgs import deserialize, serialize
from sorting.nodes.balance import SCOPE_RUN, SCOPE_SHIFT, balance_msg, balance_summary
from sorting.nodes.line_monitor import LineMonitorNode
from sorting.runtime import InProcessExecutor, SimClock
from sorting.tracking.fusion import ObjectEstimate

BALANCE = "crmsort_msgs/msg/MassBalance"
BINS = {"pcb": ["pcb_high_grade", "pcb_low_grade"], "battery": ["li_ion_pouch_pack"]}


def _est(k: int, mass: float, mix: tuple[tuple[str, float], ...]) -> ObjectEstimate:
    return ObjectEstimate(
        track_id=k, class_name=mix[0][0], class_confidence=mix[0][1], material="x",
        material_confidence=1.0, volume_m3=mass / 2000, volume_u_m3=0.0, mass_kg=mass,
        mass_u_kg=0.1 * mass, composition_source="prior", elements=("Co", "Cu"),
        fractions=(0.01, 0.1), fractions_u=(0.001, 0.01),
        element_mass_kg=(0.01 * mass, 0.1 * mass), element_mass_u_kg=(0.001 * mass, 0.01 * mass),
        value_eur=1.0, value_u_eur=0.1, sensors=("camera",), class_mix=mix)


def test_ledger_keeps_each_bins_expected_purity_and_the_missed_objects(tmp_path: Any) -> None:
    led = GradeLedger(bins=BINS)
    # 1 kg board sure of itself; 1 kg object 70 % high-grade board, 30 % a pouch pack: 0.7 kg
    # of it belongs in the pcb bin
    led.book(_est(1, 1.0, (("pcb_high_grade", 1.0),)), "pcb")
    led.book(_est(2, 1.0, (("pcb_high_grade", 0.5), ("pcb_low_grade", 0.2),
                           ("li_ion_pouch_pack", 0.3))), "pcb")
    led.book(_est(3, 2.0, (("li_ion_pouch_pack", 0.9), ("tablet", 0.1))), "battery")
    led.book(_est(4, 0.5, (("pcb_low_grade", 1.0),)), RESIDUE, wanted_bin="pcb")
    led.book(_est(5, 3.0, (("steel_scrap", 1.0),)), RESIDUE)
    assert led.purity("pcb") == pytest.approx(1.7 / 2.0)
    assert led.purity("battery") == pytest.approx(0.9)
    assert led.purity(RESIDUE) is None and led.purity("feed") is None
    assert led.picked_purity() == pytest.approx((1.7 + 1.8) / 4.0)
    res = led.accounts[RESIDUE]
    assert (res.missed, res.missed_kg) == (1, 0.5)
    # written and read back
    led.to_json(tmp_path / "ledger.json")
    back = GradeLedger.load(tmp_path / "ledger.json")
    assert back.purity("pcb") == pytest.approx(0.85)
    assert back.accounts[RESIDUE].missed == 1
    # a ledger that does not know the bins' classes has no purity
    assert GradeLedger().purity("pcb") is None


def test_balance_message_carries_the_books_over_the_wire() -> None:
    led = GradeLedger(bins=BINS)
    led.book(_est(1, 1.0, (("pcb_high_grade", 0.8), ("tablet", 0.2))), "pcb")
    led.book(_est(2, 2.0, (("steel_scrap", 1.0),)), RESIDUE, wanted_bin="metal")
    msg = deserialize(serialize(balance_msg(led, SCOPE_SHIFT, 7_000, 9_000), BALANCE), BALANCE)
    s = balance_summary(msg)
    assert (s["scope"], s["start_ns"], s["t_ns"]) == (SCOPE_SHIFT, 7_000, 9_000)
    assert list(s["destinations"]) == ["feed", "pcb", RESIDUE]
    assert s["destinations"]["feed"]["mass_kg"] == pytest.approx(3.0)
    assert s["destinations"]["pcb"]["purity"] == pytest.approx(0.8)
    assert s["destinations"][RESIDUE]["purity"] is None
    assert (s["missed_objects"], s["missed_kg"]) == (1, pytest.approx(2.0))
    co = s["elements"]["Co"]
    assert co["critical"]
    assert co["by_destination"]["pcb"]["kg"] == pytest.approx(0.01)
    assert co["by_destination"]["pcb"]["recovery"] == pytest.approx(1 / 3)
    assert co["by_destination"]["feed"]["recovery"] == 1.0
    assert co["closure"] == pytest.approx(0.0, abs=1e-12)


def _monitor(window_s: float = 60.0) -> tuple[InProcessExecutor, LineMonitorNode]:
    ex = InProcessExecutor(SimClock())
    node = ex.add_node(LineMonitorNode, "line_monitor", namespace="/line1",
                       parameters={"rate_hz": 1.0, "kpi_window_s": window_s})
    return ex, node


def test_monitor_reports_throughput_over_its_window_purity_and_picks() -> None:
    """Two objects a second for the first 60 s, then one a second: over a 60 s window the
    line runs at 60 objects/min once the first minute has left the window."""
    ex, mon = _monitor()
    led = GradeLedger(bins=BINS)
    k = 0
    for t in range(1, 181):
        for _ in range(2 if t <= 60 else 1):
            k += 1
            if k % 10 == 0:   # every tenth object picked, 90 % sure of its class
                led.book(_est(k, 0.5, (("pcb_low_grade", 0.9), ("steel_scrap", 0.1))), "pcb")
            else:
                led.book(_est(k, 1.5, (("steel_scrap", 1.0),)), RESIDUE,
                         wanted_bin="pcb" if k % 10 == 5 else "")
        ex.spin_until(t * 10**9)
        ex.inject("/line1/sorting/balance", BALANCE, balance_msg(led, SCOPE_RUN, 0, t * 10**9))
        # the shift's books (here only the last minute's) must not be taken for the run's
        ex.inject("/line1/sorting/balance", BALANCE,
                  balance_msg(GradeLedger(bins=BINS), SCOPE_SHIFT, 0, t * 10**9))
        if t == 30:   # the status of the next second reports it
            ex.spin_until(31 * 10**9)
            early = mon.last_status
    ex.spin_until(181 * 10**9)
    st = mon.last_status
    assert st.objects_seen == k == 240
    assert st.objects_picked == 24 and st.objects_missed == 24
    assert st.throughput_objects_per_min == pytest.approx(60.0)
    # 54 residue objects of 1.5 kg and 6 picked of 0.5 kg a minute
    assert st.throughput_kg_per_h == pytest.approx((54 * 1.5 + 6 * 0.5) * 60)
    assert st.purity == pytest.approx(0.9)
    # early on, the rate spans what there is (29 s between the first and the 30th balance)
    assert early.throughput_objects_per_min == pytest.approx(120.0)
    assert early.objects_seen == 60


def test_monitor_without_balances_reports_no_kpis_and_refuses_a_bad_window() -> None:
    ex, mon = _monitor()
    ex.spin_until(5 * 10**9 + 1)
    st = mon.last_status
    assert st.objects_seen == 0 and st.throughput_objects_per_min == 0.0
    assert math.isnan(st.purity)
    with pytest.raises(ConfigError, match="kpi_window_s"):
        _monitor(window_s=0.0)
