"""Monitoring: the serving model's prediction log, its realized metrics once labels mature, and drift.

Entry points (import them from their modules; this package imports nothing, so DAG parsing stays cheap):

* ``pitlake.monitoring.predictions`` — the ``monitoring.predictions`` Delta table the serving app appends
  to (``write_predictions``) and the monitor reads (``read_predictions``);
* ``pitlake.monitoring.monitor.monitor`` / ``MonitorResult`` — one day's check of the champion: realized
  ROC AUC against the gate's floor, PSI per feature against the training set, an HTML report;
  ``raise_on_breach`` turns a breach into a one-line :class:`~pitlake.monitoring.monitor.MonitoringBreach`.

Supporting modules: ``metrics`` (PSI, calibration, realized metrics; pure numpy/pandas/scikit-learn) and
``report`` (the self-contained HTML report).
"""
