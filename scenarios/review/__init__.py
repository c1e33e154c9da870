"""Outside-user review: four components written blind (before reading the harness docs), each
with a correct class and buggy variants carrying deliberately planted bugs, plus harness targets
written afterwards from the user docs alone.  See docs/reviews/outside-user.md."""
