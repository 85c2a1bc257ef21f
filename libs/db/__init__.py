"""Database plumbing: the embedded dev/test PostgreSQL, role and database provisioning,
migrations, and connection URLs."""
