"""Round 9 of the blind outside-user review: four components written before reading the harness.

supervisor, idle timeouts, a multiplexed RPC client and a reusable barrier, each with three buggy
twins (see BUGS.md), then targets written from the user documentation alone (targets.py).
"""
