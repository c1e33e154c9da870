"""Reproducer (docs/reviews/outside-user.md, set-order nondeterminism): Synapse's AwakenableSleeper with every job
under one name.  ``harness fuzz scenarios.review.sleeper_repro:one_name_sleeper`` stops with
"target ... is nondeterministic" within a few hundred examples: ``wake`` calls the name's
sleepers back in ``set`` order, which follows memory addresses.  Needs the thirdparty extra."""

from scenarios.review.repros import one_name_sleeper as _build

one_name_sleeper = _build()
