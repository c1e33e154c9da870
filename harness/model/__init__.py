"""The model: what a schedule, a fault, a trace and a target are, as plain data.

Owns the schedule and its operations (``schedule``), injected errors
(``faults``), the trace of a run (``trace``), job keys (``keys``), named
operations (``operations``), the menu a search draws from (``menu``) and the
``Target`` description of a subject (``target``). It runs nothing.

May import: ``harness.errors`` only (and Twisted/Hypothesis types).
"""
