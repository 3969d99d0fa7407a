"""salesforce plugin."""
