"""jwt_auth plugin."""
