"""Twilio Voice plugin: signed voice, status and recording webhooks."""
