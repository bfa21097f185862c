"""Labels (``labels.<use_case>``): reads ``bronze.events`` at a pinned version, writes one spine row per
customer-visit day with the outcome of the next 7 days, only for days whose horizon is fully observed.
A run replaces exactly its ``label_date`` range. See :mod:`pitlake.labels.build`.
"""
