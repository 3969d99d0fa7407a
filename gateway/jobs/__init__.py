"""The durable job queue: jobs live in the database and are claimed with a lease."""
