"""Admin plugin: one-time super-admin setup and the protected debug endpoint."""
