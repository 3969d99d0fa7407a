"""microsoft_teams plugin."""
