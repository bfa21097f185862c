"""Lake maintenance (weekly): OPTIMIZE and VACUUM every Delta table without deleting a file a registered
model's pinned Delta version reads. See :mod:`pitlake.maintenance.compact`.
"""
