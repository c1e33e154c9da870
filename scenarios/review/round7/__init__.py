"""Round 7 of the outside-user review: four components written blind, each with three buggy twins.

lease (a lease keeper), swr (a stale-while-revalidate cache), bulkhead (a bounded concurrency
limiter with a bounded wait queue) and saver (a debounced saver with a max-wait). BUGS.md lists the
twins and what each should be caught by.
"""
