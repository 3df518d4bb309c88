"""PostgreSQL: connection pools, errors as store errors, schema migrations, notifications."""
