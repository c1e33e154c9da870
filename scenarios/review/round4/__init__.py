"""Fourth outside-user review: four Twisted components written blind (an AIMD concurrency
limiter, a cron-like runner with no-overlap and misfire grace, a keyed single-flight cache with
TTL and stale-while-revalidate, a heartbeat monitor), each with a correct class and three buggy
twins, and harness targets written afterwards from the user docs alone.  See
docs/reviews/outside-user-4.md."""
