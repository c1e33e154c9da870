"""Outside-user review, round 11: four Twisted components written blind (a readers-writer lock
with writer preference, an ordered-results executor, an adaptive poller and a retry queue with a
dead-letter queue), each with a correct class and three buggy twins (see BUGS.md), plus harness
targets written afterwards from the user documentation alone (targets.py).  See
docs/reviews/outside-user-11.md."""
