"""The validation suites, one module per table or layer; each has ``plan(spark, target, table_df)``
returning a :class:`~pitlake.validation.records.SuitePlan` (the slice and its expectations).

- :mod:`.bronze_events`: ``bronze.events``, one interval of ``event_date``;
- :mod:`.bronze_customers`: ``bronze.customers``, the profile versions ingested in an interval;
- :mod:`.features`: ``features.<view>``, generated from each feature view's definition;
- :mod:`.labels`: ``labels.<use_case>``, the label spine of an interval and its label rate;
- :mod:`.training_sets`: ``training_sets.<use_case>``, one training set, above all its leakage invariant.

:func:`pitlake.validation.runner.suite_module` picks the module for a table.
"""
