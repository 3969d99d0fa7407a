"""google_calendar plugin."""
