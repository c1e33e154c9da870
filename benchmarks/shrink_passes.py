"""Shrink sizes and costs of the shrinker with and without its cancel pass, on the zoo's first failures.

    python benchmarks/shrink_passes.py out.json

For every buggy scenario of ``scenarios.CATALOG`` (and six round-10 twins) it runs a seed-1 campaign
(at most 400 examples; 3,000 for ``credit_stall_timer_sticks``) and shrinks its first failure twice,
from the same found schedule: with ``harness.search.shrink.PASSES`` less ``_cancel_closer`` (the
passes before review 10's finding 4) and with all of them. Prints, per scenario, the minimal
schedule's operations, the shrink runs and the CPU seconds of each; writes them as JSON.
"""
import json, sys, time, tempfile
import harness.search.campaign as campaign
import harness.search.shrink as shrink
from harness import CampaignConfig, load_target, run_campaign
from scenarios import CATALOG

NEW = list(shrink.PASSES)
OLD = [p for p in NEW if p.__name__ != "_cancel_closer"]
rows = {}
current = [None]

def both(schedule, still_fails, max_jump_ms=None):
    out = {}
    for name, passes in (("old", OLD), ("new", NEW)):
        shrink.PASSES[:] = passes
        n = [0]
        def counted(s):
            n[0] += 1
            return still_fails(s)
        t = time.process_time()
        result = shrink.shrink_schedule(schedule, counted, max_jump_ms)
        out[name] = (len(result.ops), n[0], round(time.process_time() - t, 3), result)
    shrink.PASSES[:] = NEW
    rows.setdefault(current[0], []).append({k: v[:3] for k, v in out.items()})
    return out["new"][3]

campaign.shrink_schedule = both
targets = [s.target for s in CATALOG if s.expect != "pass"] + [
    f"scenarios.review.round10.targets:{n}" for n in ("credit_stall_timer_sticks", "delay_reschedule_keeps_timer",
    "delay_cancel_keeps_slot", "credit_cancel_keeps_credit", "saga_timeout_lingers", "lease_release_keeps_renewing")]
with tempfile.TemporaryDirectory() as tmp:
    for spec in targets:
        current[0] = spec
        cap = 3000 if spec.endswith("credit_stall_timer_sticks") else 400
        try:
            run_campaign(load_target(spec), spec, CampaignConfig(seed=1, max_examples=cap, regressions=None, report_dir=tmp))
        except Exception as exc:
            print(spec, "error", exc, flush=True)
        for r in rows.get(spec, [])[:1]:
            print(spec, r, flush=True)
json.dump(rows, open(sys.argv[1], "w"))
