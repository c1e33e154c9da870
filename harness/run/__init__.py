"""Running one schedule under the fault clock, and the record it leaves.

Owns the fault-injecting clock (``clock``, self-fuzzed by ``clock_fuzz``),
the jobs a schedule submits (``jobs``), the run lifecycle (``runner``) and
what it uses (``checks``, ``steps``, ``logcapture``, ``garbage``, ``describe``, ``rewritten``), and
the derived record of a run: per-job facts (``facts``), which reactor call each
event happened in and when it was due (``calls``), what each caller
received (``outcomes``) and the typed run API (``view``); and the diagnosis
step (``diagnosis``), which plays counterfactual schedules to say why a
run's stranded jobs never finished.

May import: ``harness.errors``, ``harness.model``, ``harness.guard``.
"""
