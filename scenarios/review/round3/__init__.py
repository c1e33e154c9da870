"""Third outside-user review: four Twisted components written first without the harness in
mind (a hedged request, a per-tenant bulkhead, a whole-request deadline over a connection pool,
a priority queue with aging), each with a correct class and buggy twins carrying realistic bugs,
and harness targets written afterwards from the user docs alone.  See
docs/reviews/outside-user-3.md."""
