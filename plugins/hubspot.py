"""hubspot plugin."""
