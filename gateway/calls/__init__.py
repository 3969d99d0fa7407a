"""Voice calls and their recordings, provider-neutral."""
