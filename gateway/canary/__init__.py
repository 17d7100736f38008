"""The canary judge: anytime-valid comparisons of a route's two arms, and progressive rollout.

- `judge`: `CanaryJudge`, which rolls a bad canary back by itself;
- `sequential`: the statistics (pure);
- `rollout`: the steps of a progressive rollout (pure);
- `store`: the judge's counts and state in the database.

Imports: the foundations and `flags`.
"""
